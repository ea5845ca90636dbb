"""Probes of a hostile user, kept as regression tests, one file per family."""
