"""Tracker stage: the incident lifecycle state machine and its timestamps."""
