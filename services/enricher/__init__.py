"""Enricher stage: resolves places and attaches caller history to each intake."""
