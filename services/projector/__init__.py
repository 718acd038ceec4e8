"""Projector stage: builds the PostgreSQL read models from every topic."""
