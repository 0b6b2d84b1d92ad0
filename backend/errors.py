"""The openEO error document for every failure of the HTTP API.

One Flask error handler renders any :class:`processes.errors.OpenEOError` as
``{"id", "code", "message", "links"}`` with its HTTP status. Werkzeug's HTTP errors (404, 405, …)
and unexpected exceptions are mapped to openEO errors too, so a client never sees an HTML page or a
traceback; the traceback of an unexpected error goes to the server log under the error's id.
"""

from __future__ import annotations

import logging
import uuid

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from processes.errors import (
    BadRequest as BadRequestError,
)
from processes.errors import (
    Internal,
    MethodNotAllowed,
    NotFound,
    OpenEOError,
)

log = logging.getLogger(__name__)

_HTTP_ERRORS: dict[int, type[OpenEOError]] = {404: NotFound, 405: MethodNotAllowed, 400: BadRequestError}


def error_response(error: OpenEOError):
    error_id = uuid.uuid4().hex
    body = {"id": error_id, "code": error.code, "message": error.message, "links": []}
    if error.node_id is not None:
        body["node_id"] = error.node_id  # not in the schema's required fields; helps users find the node
    if error.status >= 500:
        log.error("openEO error %s (%s): %s", error_id, error.code, error.message)
    response = jsonify(body)
    response.status_code = error.status
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(OpenEOError)
    def _openeo(error: OpenEOError):
        return error_response(error)

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException):
        cls = _HTTP_ERRORS.get(error.code or 500)
        if error.code == 404:
            return error_response(NotFound("Resource not found: no such URL in the openEO API of this back-end."))
        if error.code == 405:
            return error_response(MethodNotAllowed(f"Method not allowed for this URL: {error.description}"))
        if cls is None:
            generic = type("HttpError", (OpenEOError,), {"code": error.name.replace(" ", ""), "status": error.code})
            return error_response(generic(error.description or error.name))
        return error_response(cls(error.description or error.name))

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        error_id = uuid.uuid4().hex
        log.exception("unexpected error %s", error_id)
        response = error_response(Internal(f"Server error: {type(error).__name__}: {error}"))
        return response
