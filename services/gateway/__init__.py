"""The HTTP gateway: CloudEvents, Open311, EIDO, CAP alerts and the pages."""
