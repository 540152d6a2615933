"""Revisions of the case store's schema, oldest first."""
