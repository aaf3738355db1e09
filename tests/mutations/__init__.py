"""The mutation check: planted defects a person would notice, each of which must fail the
fast lane (``tests/mutations/mutants.py``; run with ``python -m tests.mutations``)."""
