"""Terracube's HTTP back-end: entry points (app factory, WSGI, CLI), the API views, and the services.
Arrows: entry points → ``backend.api`` → services (``backend.*``) → ``processes`` → ``udf``; only entry points import ``backend.app``."""

__version__ = "0.1.0"
