"""Plumbing every stage shares: settings, logging, broker, pool, inbox/outbox and dead letters."""
