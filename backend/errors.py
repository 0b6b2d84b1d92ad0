"""The openEO error document for every failure of the HTTP API.

One Flask error handler renders any :class:`processes.core.errors.OpenEOError` as
``{"id", "code", "message", "links"}`` with its HTTP status. Werkzeug's HTTP errors (404, 405, …)
and unexpected exceptions are mapped to openEO errors too, so a client never sees an HTML page or a
traceback. The ``id`` a client receives is the request's id (:mod:`backend.access_log`), under which
the server log records the failure (with the traceback of an unexpected error), or the reference an
unexpected failure inside a process was logged under; so a user's reference leads an operator to the
cause. The text of an unexpected exception stays in the log and never reaches the client.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import Flask, g, has_request_context, jsonify
from werkzeug.exceptions import HTTPException

from backend.access_log import request_id
from processes.core.errors import Internal, MethodNotAllowed, NotFound, OpenEOError

log = logging.getLogger(__name__)


def error_response(error: OpenEOError, error_id: str | None = None):
    error_id = error_id or getattr(error, "reference", None) or request_id() or uuid.uuid4().hex
    if has_request_context():
        g.error_id = error_id
    body: dict[str, Any] = {"id": error_id, "code": error.code, "message": error.message, "links": []}
    if error.node_id is not None:
        body["node_id"] = error.node_id  # not in the schema's required fields; helps users find the node
    if error.status >= 500 and getattr(error, "reference", None) is None:  # with a reference: logged already
        log.error("openEO error %s (%s): %s", error_id, error.code, error.message)
    response = jsonify(body)
    response.status_code = error.status
    return response


def _http_error(error: HTTPException) -> OpenEOError:
    if error.code == 404:
        return NotFound("Resource not found: no such URL in the openEO API of this back-end.")
    if error.code == 405:
        return MethodNotAllowed(f"Method not allowed for this URL: {error.description}")
    generic = type("HttpError", (OpenEOError,), {"code": error.name.replace(" ", ""), "status": error.code or 500})
    return generic(error.description or error.name)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(OpenEOError)
    def _openeo(error: OpenEOError):
        return error_response(error)

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException):
        return error_response(_http_error(error))

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        error_id = request_id() or uuid.uuid4().hex
        log.exception("unexpected error %s", error_id)
        return error_response(Internal(f"Server error (reference {error_id}): the back-end failed unexpectedly. "
                                       "Please report the reference to the operator."), error_id)
