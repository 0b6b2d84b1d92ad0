"""One access line per request in the server log: method, path, status, duration, user, request id.

The request id is made when the request arrives, sent back in the ``X-Request-Id`` header, and is
the ``id`` of an error document that request answers (unless an unexpected failure already logged
its cause under a reference of its own, which the line then names too), so an operator finds
everything about one request with one search. Users are named by their id, never by a secret, and
the secrets some URLs carry (signed result links, map services' tile keys) are left out of the path.
"""

from __future__ import annotations

import logging
import time
import uuid

from flask import Flask, Response, g, request

log = logging.getLogger("terracube.access")

USER_KEY = "terracube.user"
"""Where authentication leaves the user id in the WSGI environ of a request."""
SECRET_PATH_PARTS = {"token": None, "key": "service_id"}
"""URL rule variables that grant access by themselves, logged as ``<token>``, ``<key>``: a signed
result link's token, and a map service's tile key (a ``key`` next to a ``service_id``; an asset's key
is no secret)."""


def logged_path() -> str:
    """The request's path with the values of :data:`SECRET_PATH_PARTS` replaced by their names."""
    path = request.path
    args = request.view_args or {}
    for name, beside in SECRET_PATH_PARTS.items():
        value = args.get(name)
        if value and (beside is None or beside in args):
            path = path.replace(f"/{value}", f"/<{name}>")
    return path


def request_id() -> str | None:
    """The id of the request being handled (None outside a request)."""
    return g.get("request_id")


def register_access_log(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        g.request_id = uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def _line(response: Response) -> Response:
        rid = g.get("request_id")
        if rid is None:  # a request that failed before it started (routing), still gets an id
            rid = g.request_id = uuid.uuid4().hex
        response.headers["X-Request-Id"] = rid
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        error = g.get("error_id")
        log.info("%s %s %s %.3fs user=%s request=%s%s", request.method, logged_path(), response.status_code,
                 elapsed, request.environ.get(USER_KEY, "-"), rid,
                 f" error={error}" if error and error != rid else "")
        return response
