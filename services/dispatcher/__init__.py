"""Dispatcher stage: claims units for incidents and issues agency work orders."""
