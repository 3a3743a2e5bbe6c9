"""Dependency graphs and size breakdowns of a repository's packages and of a profile's lock (docs/stats.md)."""
