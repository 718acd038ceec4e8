"""The embedded stack: a Kafka-compatible broker and PostgreSQL without Docker or root services."""
