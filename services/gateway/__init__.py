"""The gateway stage: Siaga over HTTP (CloudEvents intake, channel webhooks, Open311, EIDO, CAP)."""
