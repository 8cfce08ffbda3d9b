"""The mesh as a whole: which services exist, how they are built, wired and started."""
