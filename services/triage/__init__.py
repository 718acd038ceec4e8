"""Triage stage: category, priority, agency and SLA for each intake; one incident per event."""
