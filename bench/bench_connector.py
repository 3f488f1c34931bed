"""Connector costs side by side: panel calls per second through the connector vs straight to the backend,
and the first signed install (key fetched) vs later ones (key cached)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import requests


def _rate(fn, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - t0)


def run(quick: bool) -> dict:
    """Measure the connector's overhead on a panel call and the install key cache."""
    from connector.handoff import service_token
    from tests.connector.connector_stack import start_stack

    n = 30 if quick else 200
    with tempfile.TemporaryDirectory() as tmp:
        stack = start_stack(Path(tmp))
        try:
            info = stack.install()
            cloud = info["cloudId"]
            session = requests.Session()
            keys = stack.app.extensions["connector"].keys
            ctx = {"Authorization": f"JWT {stack.context_token()}"}
            via_connector = _rate(lambda: session.get(stack.url + "/panel/api/status", headers=ctx), n)
            direct = _rate(
                lambda: session.get(
                    f"{stack.backend.url}/api/v1/organisations/{cloud}/status",
                    headers={"Authorization": f"Bearer {service_token(keys, cloud)}"},
                ),
                n,
            )
            verifier = stack.app.extensions["connector"].connect
            kid = stack.site.server.app.extensions["atlassian"].install_kid
            t0 = time.perf_counter()
            verifier.install_keys._cache.clear()
            verifier.install_keys.get(kid)
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            for _ in range(n):
                verifier.install_keys.get(kid)
            cached = (time.perf_counter() - t0) / n
        finally:
            for server in (stack.connector, stack.backend, stack.site):
                server.stop()
    return {
        "panel_status_per_s_via_connector": round(via_connector, 1),
        "backend_status_per_s_direct": round(direct, 1),
        "connector_overhead_ratio": round(direct / via_connector, 2),
        "install_key_fetch_ms": round(first * 1000, 2),
        "install_key_cached_us": round(cached * 1e6, 2),
        "install_key_cache_speedup": round(first / cached, 1),
    }
