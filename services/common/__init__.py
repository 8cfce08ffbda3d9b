"""Plumbing shared by every service: settings, server wiring, errors, auth, storage."""
