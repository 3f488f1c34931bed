"""The sandbox's own speed: requests/second for id pages and bulkfetch beside a trivial Flask endpoint,
and generation time and memory for a large site.

Everything is served the same way (waitress with threads on 127.0.0.1), so the ratios say how much of a
request's cost is the sandbox's own work rather than HTTP and WSGI.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import requests

AUTH = ("admin@example.com", "sandbox-admin-token")
CLIENTS = 4


@contextmanager
def _served(app):
    """Serve a WSGI app with waitress on a free 127.0.0.1 port in a background thread."""
    from waitress.server import create_server

    server = create_server(app, host="127.0.0.1", port=0, threads=8, ident="bench")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()
        thread.join(timeout=5)


def _rate(call, seconds: float) -> float:
    """Run `call(session)` from CLIENTS threads for `seconds` and return completed calls per second."""
    stop = time.perf_counter() + seconds
    counts = [0] * CLIENTS

    def worker(n: int) -> None:
        with requests.Session() as http:
            http.auth = AUTH
            while time.perf_counter() < stop:
                call(http)
                counts[n] += 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(worker, range(CLIENTS)))
    return sum(counts) / (time.perf_counter() - t0)


def _hello_app():
    from flask import Flask

    app = Flask("hello")

    @app.get("/hello")
    def hello():
        return {"hello": "world"}

    return app


def _throughput(issues: int, seconds: float) -> dict[str, object]:
    from sandbox.app import create_app
    from sandbox.config import SandboxConfig

    app = create_app(SandboxConfig(projects=1, issues_per_project=issues, seed=5))
    out: dict[str, object] = {}
    with _served(_hello_app()) as hello_url:

        def hello(http):
            assert http.get(f"{hello_url}/hello", timeout=30).status_code == 200

        out["hello_flask_rps"] = round(_rate(hello, seconds), 1)
    with _served(app) as url:
        key = requests.get(f"{url}/rest/api/3/project/search", auth=AUTH, timeout=30).json()["values"][0][
            "key"
        ]
        ids = [
            i["id"]
            for i in requests.get(
                f"{url}/rest/api/3/search/jql",
                auth=AUTH,
                timeout=60,
                params={"jql": f"project = {key}", "maxResults": 5000},
            ).json()["issues"]
        ]
        batches = itertools.cycle([ids[n : n + 100] for n in range(0, len(ids), 100)])
        lock = threading.Lock()

        def next_batch() -> list[str]:
            with lock:
                return next(batches)

        def id_page(http):
            resp = http.get(
                f"{url}/rest/api/3/search/jql",
                timeout=60,
                params={"jql": f"project = {key}", "maxResults": 5000, "fields": "key,updated"},
            )
            assert resp.status_code == 200, resp.text[:200]

        def small_id_page(http):
            resp = http.get(
                f"{url}/rest/api/3/search/jql",
                timeout=60,
                params={"jql": f"project = {key}", "maxResults": 100},
            )
            assert resp.status_code == 200, resp.text[:200]

        def bulkfetch_warm(http):
            resp = http.post(
                f"{url}/rest/api/3/issue/bulkfetch",
                timeout=60,
                json={"issueIdsOrKeys": ids[:100], "fields": ["*all"]},
            )
            assert resp.status_code == 200, resp.text[:200]

        def bulkfetch(http):
            # A different 100 each call, as a backup asks: no two calls hit the same issues.
            resp = http.post(
                f"{url}/rest/api/3/issue/bulkfetch",
                timeout=60,
                json={"issueIdsOrKeys": next_batch(), "fields": ["*all"]},
            )
            assert resp.status_code == 200, resp.text[:200]

        out["search_jql_5000_id_key_updated_pages_rps"] = round(_rate(id_page, seconds), 2)
        out["search_jql_100_id_pages_rps"] = round(_rate(small_id_page, seconds), 1)
        out["bulkfetch_100_all_fields_rps"] = round(_rate(bulkfetch, seconds), 2)
        out["bulkfetch_same_100_all_fields_rps"] = round(_rate(bulkfetch_warm, seconds), 2)
        out["myself_rps"] = round(
            _rate(lambda http: http.get(f"{url}/rest/api/3/myself", timeout=30), seconds), 1
        )
    out["ratio_myself_vs_hello"] = round(out["myself_rps"] / out["hello_flask_rps"], 3)
    out["ratio_search_100_ids_vs_hello"] = round(
        out["search_jql_100_id_pages_rps"] / out["hello_flask_rps"], 3
    )
    out["issues_per_second_as_5000_id_pages"] = round(out["search_jql_5000_id_key_updated_pages_rps"] * 5000)
    out["issues_per_second_as_bulkfetch_100"] = round(out["bulkfetch_100_all_fields_rps"] * 100)
    return out


GENERATE = """
import base64, json, time, psutil
from sandbox.app import create_app
from sandbox.config import SandboxConfig
proc = psutil.Process()
base = proc.memory_info().rss
t0 = time.perf_counter()
app = create_app(SandboxConfig(projects={projects}, issues_per_project={per}, seed=1))
took = time.perf_counter() - t0
rss = proc.memory_info().rss
client = app.test_client()
auth = {{"Authorization": "Basic " + base64.b64encode(b"admin@example.com:sandbox-admin-token").decode()}}
t1 = time.perf_counter()
read, token = 0, None
while {read_all}:
    params = {{"jql": "created >= 2000-01-01", "maxResults": 5000}}
    if token:
        params["nextPageToken"] = token
    page = client.get("/rest/api/3/search/jql", query_string=params, headers=auth).get_json()
    ids = [i["id"] for i in page["issues"]]
    for start in range(0, len(ids), 100):
        got = client.post("/rest/api/3/issue/bulkfetch", json={{"issueIdsOrKeys": ids[start:start + 100],
                          "fields": ["*all"]}}, headers=auth).get_json()
        read += len(got["issues"])
    token = page.get("nextPageToken")
    if not token:
        break
print(json.dumps({{"seconds": took, "rss_mb": rss / 2**20, "added_mb": (rss - base) / 2**20,
                  "read": read, "read_seconds": time.perf_counter() - t1,
                  "rss_after_read_mb": proc.memory_info().rss / 2**20}}))
"""


def _generation(projects: int, per: int, read_all: bool) -> dict[str, object]:
    """Generate a site in a fresh interpreter, report time and memory, then read every issue in-process."""
    out = subprocess.run(
        [sys.executable, "-c", GENERATE.format(projects=projects, per=per, read_all=read_all)],
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    n = projects * per
    return {
        f"generate_{n}_issues_seconds": round(figures["seconds"], 2),
        f"generate_{n}_issues_rss_mb": round(figures["rss_mb"], 1),
        f"generate_{n}_issues_added_mb": round(figures["added_mb"], 1),
        f"read_all_{n}_issues_in_process_seconds": round(figures["read_seconds"], 1),
        f"read_all_{n}_issues_count": figures["read"],
        f"rss_after_reading_all_{n}_issues_mb": round(figures["rss_after_read_mb"], 1),
    }


def run(quick: bool) -> dict[str, object]:
    """Measure throughput beside a hello endpoint, then generation time and memory."""
    figures = _throughput(issues=6000 if quick else 20000, seconds=2.0 if quick else 6.0)
    figures.update(_generation(5, 2000, True) if quick else _generation(20, 5000, True))
    return figures


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
