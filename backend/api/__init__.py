"""HTTP API of the back-end: one blueprint per endpoint group (thin views over the services).
May import the services (``backend.services`` and the modules it holds) and ``processes``; never ``backend.app``."""

from __future__ import annotations

from flask import request

from backend.api.body import json_body


def base_url() -> str:
    """The API root as the client sees it, e.g. ``http://127.0.0.1:8080/openeo/1.2``."""
    from backend.settings import API_PREFIX

    return request.host_url.rstrip("/") + API_PREFIX


__all__ = ["base_url", "json_body"]
