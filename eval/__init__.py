"""Evaluation of triage on Siaga's own labelled corpus and two public corpora (`make eval`)."""
