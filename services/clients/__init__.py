"""Clients outside the pipeline: the operator's report client and the field-unit client."""
