"""Accounts: registration, sessions and profiles."""
