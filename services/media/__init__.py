"""Media: upload, process, store and serve images."""
