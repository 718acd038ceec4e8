"""The benchmark of the whole pipeline against the raw aiokafka client (`make bench`)."""
