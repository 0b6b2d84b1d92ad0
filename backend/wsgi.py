"""WSGI entry point for any WSGI server: ``gunicorn backend.wsgi:app`` (settings from the environment)."""

from backend.app import create_app
from processes.core.collector import freeze_startup_objects

app = create_app()
freeze_startup_objects()
