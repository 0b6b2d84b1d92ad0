"""Web pages: the map viewer (``GET /viewer``) and the static files of ``backend/web``.

The pages live outside the openEO API prefix (they are not API endpoints and stay out of the
capabilities' ``endpoints``) and talk only to the public API and tile URLs, like any other client.
They are plain HTML, ES modules and CSS with no build step: ``/web/js/…`` and ``/web/css/…`` are the
page's own files, ``/web/vendor/<package>/…`` the ``dist`` files of the third-party libraries that
``make install`` puts into ``backend/web/node_modules`` (``npm ci`` from the committed lock file).
Only the packages named in :data:`VENDOR_DIST` and files with a known suffix are served; every path
is resolved and must stay inside its folder.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, redirect, request, send_file

from processes.core.errors import NotFound

blueprint = Blueprint("web", __name__)

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
"""``backend/web``: the pages, their modules and styles, ``package.json`` and its lock file."""

VENDOR_DIST = {"leaflet": "dist"}
"""npm package → its folder of distributed files, the only part of ``node_modules`` served."""

MEDIA_TYPES = {
    ".js": "text/javascript",  # ES modules must come as JavaScript, whatever the system's mime table says
    ".css": "text/css",
    ".png": "image/png",
    ".map": "application/json",
}

MISSING_LIBRARIES = (
    "The map viewer's JavaScript libraries are not installed. Run `make install` (it runs `npm ci` in "
    "backend/web and needs Node.js and npm) or `npm ci` in backend/web, then reload this page.\n"
)


def libraries_installed() -> bool:
    """Whether every package of :data:`VENDOR_DIST` is in ``backend/web/node_modules``."""
    return all((WEB_DIR / "node_modules" / package / dist).is_dir() for package, dist in VENDOR_DIST.items())


def _file_in(folder: Path, name: str) -> Response:
    """``folder/name`` when it is a file of a known type inside ``folder``; ``NotFound`` otherwise."""
    path = (folder / name).resolve()
    if not path.is_relative_to(folder.resolve()) or not path.is_file() or path.suffix not in MEDIA_TYPES:
        raise NotFound(f"No web page file at {request.path}.")
    return send_file(path, mimetype=MEDIA_TYPES[path.suffix])


@blueprint.get("/viewer")
def viewer():
    # the page links its files relatively (``web/js/…``), so it must be read from ``…/viewer``
    if request.path.endswith("/"):
        query = f"?{request.query_string.decode()}" if request.query_string else ""
        return redirect(f"{request.script_root}{request.path.rstrip('/')}{query}", code=308)
    if not libraries_installed():
        return Response(MISSING_LIBRARIES, status=503, mimetype="text/plain")
    return send_file(WEB_DIR / "viewer.html", mimetype="text/html")


@blueprint.get("/web/<any(js, css):kind>/<path:name>")
def page_file(kind: str, name: str):
    return _file_in(WEB_DIR / kind, name)


@blueprint.get("/web/vendor/<package>/<path:name>")
def vendor_file(package: str, name: str):
    if package not in VENDOR_DIST:
        raise NotFound(f"'{package}' is not a library of the web pages; they use {', '.join(VENDOR_DIST)}.")
    if not libraries_installed():
        raise NotFound(MISSING_LIBRARIES.strip())
    return _file_in(WEB_DIR / "node_modules" / package / VENDOR_DIST[package], name)
