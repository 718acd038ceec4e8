"""Ops tools over the event log: lag, replay, rebuild, dead letters, incident history."""
