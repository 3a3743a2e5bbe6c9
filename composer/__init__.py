"""Veridian Composer: declarative, reproducible system images from signed packages."""

__version__ = "0.1.0"
