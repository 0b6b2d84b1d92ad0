"""The server under load: many identical /result requests at once, and a huge request while others wait."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.reliability.conftest import WORLD_METRIC, Server, describe, request_body

CONCURRENT = 50
ROUNDS = 3
GRAPHS = {
    "B04": request_body(),
    "NDVI": request_body(ndvi=True),
}
CAPABILITIES_SECONDS = 1.0


def test_fifty_concurrent_results_three_rounds_give_identical_files(server: Server):
    headers = server.headers()
    names = list(GRAPHS)

    def fetch(i: int) -> tuple[str, int, bytes]:
        name = names[i % len(names)]
        response = requests.post(f"{server.api}/result", json=GRAPHS[name], headers=headers, timeout=300)
        return name, response.status_code, response.content if response.ok else response.content[:500]

    seen: dict[str, set[bytes]] = {name: set() for name in names}
    for round_ in range(ROUNDS):
        with ThreadPoolExecutor(CONCURRENT) as pool:
            answers = list(pool.map(fetch, range(CONCURRENT)))
        statuses = Counter(status for _, status, _ in answers)
        assert statuses == {200: CONCURRENT}, (round_, statuses,
                                               [body[:300] for _, status, body in answers if status != 200][:3])
        for name, _status, body in answers:
            seen[name].add(body)
    for name, bodies in seen.items():
        assert len(bodies) == 1, f"{name}: {len(bodies)} different files from the same graph"
        assert next(iter(bodies))[:4] in (b"II*\x00", b"MM\x00*"), f"{name}: not a GeoTIFF"


def test_the_server_answers_while_it_refuses_a_world_sized_request(server: Server):
    """``GET /`` keeps answering within a second while world-sized requests arrive and are refused."""
    headers = server.headers()
    stop = threading.Event()
    slow: list[str] = []
    polls = 0

    def watch() -> None:
        nonlocal polls
        while not stop.is_set():
            start = time.monotonic()
            try:
                response = requests.get(f"{server.api}/", timeout=5)
                seconds = time.monotonic() - start
                if response.status_code != 200 or seconds > CAPABILITIES_SECONDS:
                    slow.append(f"{response.status_code} after {seconds:.2f} s")
            except requests.RequestException as error:
                slow.append(f"{type(error).__name__} after {time.monotonic() - start:.2f} s")
            polls += 1
            time.sleep(0.05)

    def world(path: str) -> requests.Response:
        return requests.post(f"{server.api}{path}", json=request_body(WORLD_METRIC), headers=headers, timeout=600)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        time.sleep(0.5)
        started = time.monotonic()
        with ThreadPoolExecutor(4) as pool:  # as many as half the server's threads at once
            answers = list(pool.map(world, ["/result", "/result", "/validation", "/jobs"]))
        busy = time.monotonic() - started
        time.sleep(max(0.0, 3.0 - busy))  # watch for a few seconds at least
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert polls > 10
    assert not slow, f"GET / was slow or failed {len(slow)} of {polls} times: {slow[:10]}"
    for response in answers:
        assert response.status_code < 500, describe(response)
