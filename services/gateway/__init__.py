"""The HTTP gateway: CloudEvents, Open311, EIDO, CAP and the webhooks over the backend."""
