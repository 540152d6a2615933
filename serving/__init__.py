"""Serving: the BentoML scoring service, explanations, audit store, authentication and the CLI."""
