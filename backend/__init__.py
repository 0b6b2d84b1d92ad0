"""Terracube's HTTP back-end: the Flask API, its services (auth, catalog, jobs) and the CLI."""

__version__ = "0.1.0"
