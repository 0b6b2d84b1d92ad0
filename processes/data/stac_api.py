"""STAC API collections: a collection of a STAC API, given by its URL ``…/collections/{id}``.

Searching: the bounding box, the time interval and the property filters go to the API's ``/search``
(POST, through pystac-client) — the filters as CQL2-JSON where the API declares the Filter conformance
class, as the ``query`` extension where it declares that, else they are checked here only — and the
result pages are walked lazily to the end: there is no cap on the number of items, so a search never
stops short silently. Every item is checked again here (openEO intervals are left-closed, STAC API ones
closed; property filters are exact here), so what the API is told only has to be wide enough.

The collection's metadata (and the API's conformance) is read once per URL and kept for
:data:`METADATA_TTL` seconds, shared by every handle of the URL (the configured collection and each
``load_stac`` of it); :meth:`StacApiCollection.refresh` re-reads it at once.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pystac
import requests

from processes.data.property_filters import cql2_filter, query_filter
from processes.data.stac_items import (
    BBox,
    Interval,
    Item,
    ItemSource,
    StacApiError,
    StacSourceError,
    absolute_hrefs,
    matches_properties,
    parse_time,
)

METADATA_TTL = 600.0
"""Seconds a STAC API collection's metadata is used before it is read again."""
TIMEOUT = 60.0
"""Seconds to wait for one answer of a STAC API."""
PAGE_SIZE = 1000
"""Items asked for per page. An API may give fewer (then there are more pages); the fewer pages, the fewer
round trips: a year of hourly items takes 9 pages of 1,000 instead of 36 of 250, half the time on
``rustac serve``."""


@dataclass(frozen=True)
class _Opened:
    client: Any  # pystac_client.Client
    collection: pystac.Collection
    read_at: float
    document: Mapping[str, Any]
    """The collection as a dict (made once: every load reads it)."""


_opened: dict[str, _Opened] = {}
_opened_lock = threading.Lock()


def _split(url: str) -> tuple[str, str]:
    root_url, sep, collection_id = url.rstrip("/").rpartition("/collections/")
    if not sep or not collection_id or "/" in collection_id:
        raise StacSourceError(f"'{url}' is not a STAC API collection URL; expected https://…/collections/<id>.")
    return root_url, collection_id


def _open(url: str) -> _Opened:
    from pystac_client import Client
    from pystac_client.stac_api_io import StacApiIO

    root_url, collection_id = _split(url)
    try:
        client = Client.open(root_url, stac_io=StacApiIO(timeout=TIMEOUT, max_retries=1))
        collection = client.get_collection(collection_id)
    except Exception as exc:
        raise StacSourceError(f"Cannot open STAC API collection '{url}': {exc}") from exc
    # pystac-client answers None for a 404, and (without the collections conformance class)
    # the last collection it saw when none has the id
    if collection is None or collection.id != collection_id:
        raise StacSourceError(
            f"Cannot open STAC API collection '{url}': the API has no collection '{collection_id}'; "
            f"see {root_url}/collections for those it has."
        )
    return _Opened(client, collection, time.monotonic(),
                   collection.to_dict(include_self_link=False, transform_hrefs=False))


def _opened_api(url: str, *, fresh: bool = False) -> _Opened:
    with _opened_lock:
        known = _opened.get(url)
    if known is not None and not fresh and time.monotonic() - known.read_at < METADATA_TTL:
        return known
    try:
        opened = _open(url)
    except StacSourceError:
        if known is None or fresh:
            raise
        return known  # the API is down for a moment: its last known metadata is still good
    with _opened_lock:
        _opened[url] = opened
    return opened


class StacApiCollection(ItemSource):
    """A collection of a STAC API, given by its URL ``…/collections/{id}``."""

    def __init__(self, url: str):
        self.source = url
        self.root_url, _ = _split(url)
        opened = _opened_api(url)
        self.id = opened.collection.id

    def stac_collection(self) -> Mapping[str, Any]:
        return _opened_api(self.source).document

    def refresh(self) -> None:
        """Read the collection's metadata and the API's conformance again now."""
        _opened_api(self.source, fresh=True)

    @property
    def pushdown(self) -> str | None:
        """How property filters reach the API: ``"filter"`` (CQL2), ``"query"`` or None (checked here only)."""
        from pystac_client.conformance import ConformanceClasses

        client = _opened_api(self.source).client
        if client.conforms_to(ConformanceClasses.FILTER):
            return "filter"
        if client.conforms_to(ConformanceClasses.QUERY):
            return "query"
        return None

    def search_parameters(
        self,
        bbox: BBox | None,
        interval: Interval | None,
        properties: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The arguments of the API search (pystac-client's ``Client.search``) for these filters."""
        parameters: dict[str, Any] = {"collections": [self.id], "limit": PAGE_SIZE, "max_items": None}
        if bbox is not None:
            parameters["bbox"] = list(bbox)
        if interval:
            parameters["datetime"] = f"{interval[0] or '..'}/{interval[1] or '..'}"
        pushdown = self.pushdown if properties else None
        if pushdown == "filter":
            expression = cql2_filter(properties or {})
            if expression is not None:
                parameters.update(filter=expression, filter_lang="cql2-json")
        elif pushdown == "query":
            query = query_filter(properties or {})
            if query is not None:
                parameters["query"] = query
        return parameters

    def iter_items(
        self,
        bbox: BBox | None,
        interval: Interval | None,
        properties: Mapping[str, Any] | None = None,
    ) -> Iterator[Item]:
        """The matching items as plain dicts, page by page as the API gives them (see module docstring)."""
        from pystac_client.exceptions import APIError

        end = parse_time(interval[1]) if interval and interval[1] else None
        parameters = self.search_parameters(bbox, interval, properties)
        try:
            search = _opened_api(self.source).client.search(method="POST", **parameters)
            # plain dicts (making a pystac Item costs more than the rest of the search), the next page
            # asked for while this one is checked
            for page in read_ahead(search.pages_as_dicts()):
                for data in page.get("features") or []:
                    props = data.get("properties") or {}
                    if end is not None and (start := props.get("datetime") or props.get("start_datetime")) \
                            and parse_time(start) >= end:
                        continue  # STAC API intervals are closed; openEO's are left-closed
                    if matches_properties(data, properties):
                        yield _absolute_hrefs(data)
        except APIError as exc:
            if isinstance(exc.__cause__ or exc.__context__, requests.RequestException):
                raise _unreachable(self.source, exc.__cause__ or exc.__context__) from None
            raise StacApiError(
                f"The STAC API of '{self.source}' failed to search its items: {_short(exc)}. "
                "Try again later; if it persists, the API may not support this search (see its /conformance)."
            ) from None
        except requests.RequestException as exc:
            raise _unreachable(self.source, exc) from None

    def sample(self, count: int) -> list[Item]:
        """The collection's first ``count`` items as the API lists them."""
        features, _, _ = self.item_page(None, None, count)
        return features[:count]

    def item(self, item_id: str) -> dict[str, Any] | None:
        """One item of the collection as the API gives it, or None when it has no such item."""
        href = f"{self.root_url}/collections/{self.id}/items/{item_id}"
        return _fetch(self.source, href, "GET", None, missing_ok=True) or None

    # --- one page for the item endpoints --------------------------------------------------------
    def item_page(
        self,
        bbox: BBox | None,
        datetime: str | None,
        limit: int,
        resume: Mapping[str, Any] | None = None,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None, int | None]:
        """One page of items as the API gives it: ``(features, how to get the next page or None, matched)``.

        ``datetime`` is a STAC API ``datetime`` parameter (closed intervals); ``resume`` is a value this
        method returned for the following page. Links are only followed within the API's root URL.
        """
        if resume is None:
            body: dict[str, Any] = {"collections": [self.id], "limit": limit}
            if bbox is not None:
                body["bbox"] = list(bbox)
            if datetime is not None:
                body["datetime"] = datetime
            link: Mapping[str, Any] = {"href": f"{self.root_url}/search", "method": "POST", "body": body}
        else:
            link = resume
        href = str(link.get("href", ""))
        if not href.startswith(self.root_url + "/"):
            raise StacSourceError(f"A page link outside the STAC API '{self.root_url}' is not followed.")
        page = _fetch(self.source, href, str(link.get("method") or "GET").upper(), link.get("body"))
        following = next((lk for lk in page.get("links") or [] if lk.get("rel") == "next"), None)
        resume_next = None
        if following is not None and page.get("features"):
            method = str(following.get("method") or "GET").upper()
            body = following.get("body")
            if method == "POST" and following.get("merge"):
                body = {**(link.get("body") or {}), **(body or {})}
            resume_next = {"href": following["href"], "method": method, "body": body}
        matched = page.get("numberMatched")
        if matched is None:
            matched = (page.get("context") or {}).get("matched")
        return list(page.get("features") or []), resume_next, matched if isinstance(matched, int) else None


def read_ahead(pages: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The pages of a search, the following ones fetched in a thread while the caller works on the current one.

    The API's time per page and ours (parsing, checking, stacking the items) then overlap instead of
    adding up. The thread runs at most two pages ahead (one waiting to be taken, one in hand), so memory
    stays bounded. A caller that stops early (a limit reached) leaves the thread to end after the page it
    is fetching; an error of a fetch is raised to the caller after the pages before it.
    """
    ahead: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def hand_over(kind: str, value: Any) -> bool:
        while not stop.is_set():
            try:
                ahead.put((kind, value), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False  # the caller has stopped

    def fetch() -> None:
        try:
            for page in pages:
                if not hand_over("page", page):
                    return
            hand_over("end", None)
        except BaseException as exc:  # given to the caller, who raises it
            hand_over("error", exc)

    threading.Thread(target=fetch, name="stac-read-ahead", daemon=True).start()
    try:
        while True:
            kind, value = ahead.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()


def _absolute_hrefs(item: Item) -> Item:
    """The item with relative asset hrefs resolved against its ``self`` link (APIs mostly give absolute ones)."""
    self_href = next((link.get("href") for link in item.get("links") or [] if link.get("rel") == "self"), None)
    return absolute_hrefs(item, self_href) if isinstance(self_href, str) else item


def _fetch(source: str, href: str, method: str, body: Any, *, missing_ok: bool = False) -> dict[str, Any]:
    """The JSON object at ``href``; ``{}`` for a 404 when ``missing_ok``."""
    try:
        if method == "POST":
            response = requests.post(href, json=body or {}, timeout=TIMEOUT)
        else:
            response = requests.get(href, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise StacApiError(
            f"The STAC API of '{source}' did not answer within {TIMEOUT:.0f} s or could not be reached "
            f"({type(exc).__name__}). Try again later."
        ) from None
    if response.status_code == 404 and missing_ok:
        return {}
    if response.status_code != 200:
        raise StacApiError(
            f"The STAC API of '{source}' answered {response.status_code} to a page of items: "
            f"{response.text[:300]}. Try again later."
        )
    try:
        page = response.json()
    except ValueError:
        raise StacApiError(f"The STAC API of '{source}' answered a page of items that is not JSON.") from None
    if not isinstance(page, dict):
        raise StacApiError(f"The STAC API of '{source}' answered a page of items that is not a JSON object.")
    return page


def _unreachable(source: str, exc: BaseException | None) -> StacApiError:
    return StacApiError(
        f"The STAC API of '{source}' did not answer a search within {TIMEOUT:.0f} s or could not be reached "
        f"({type(exc).__name__}). Try again later, or narrow the extents."
    )


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:300] + ("…" if len(text) > 300 else "")
