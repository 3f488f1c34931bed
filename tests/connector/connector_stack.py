"""The connector's test stack: a sandbox site, a backend (the Seam 4 stand-in until backend.app exists)
and the connector, each on its own 127.0.0.1 port, plus a helper that installs the app and signs tokens."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import jwt
import requests

from connector.app import create_app
from connector.config import ConnectorConfig
from connector.qsh import qsh
from keepstone.servers import RunningServer, serve_in_thread
from tests.conftest import free_port, start_sandbox
from tests.connector.connector_fakes import create_fake_backend


@dataclass
class Stack:
    """A running sandbox, backend and connector; `install()` puts the app on the site."""

    site: RunningServer
    backend: RunningServer
    connector: RunningServer
    app: object  # the connector Flask app (for reading its tenant store in assertions)

    @property
    def url(self) -> str:
        return self.connector.url

    def install(self) -> dict:
        resp = requests.post(
            self.site.url + "/_sandbox/apps/install", json={"connector_url": self.url}, timeout=30
        )
        resp.raise_for_status()
        data = resp.json()
        assert all(e["status"] < 300 for e in data["events"]), data["events"]
        return self.info()

    def info(self) -> dict:
        return requests.get(self.site.url + "/_sandbox/apps/keepstone", timeout=10).json()

    def tenants(self):
        return self.app.extensions["connector"].tenants

    def token(self, method: str, path: str, query: str = "", *, secret=None, alg="HS256", **claims) -> str:
        """Sign a Connect token the way Jira would for this install (claims overridable)."""
        info = self.info()
        now = int(time.time())
        body = {"iss": info["clientKey"], "sub": "5b10admin", "iat": now, "exp": now + 180}
        body["qsh"] = qsh(method, f"{path}?{query}" if query else path)
        body.update(claims)
        return jwt.encode(body, secret or info["sharedSecret"], algorithm=alg)

    def context_token(self, **claims) -> str:
        return self.token("GET", "/", qsh="context-qsh", **claims)


def start_stack(tmp_path: Path, **site_options) -> Stack:
    """Start sandbox, backend and connector wired to each other."""
    site = start_sandbox(**{"projects": 2, "issues_per_project": 5, "seed": 3, **site_options})
    port = free_port()
    connector_url = f"http://127.0.0.1:{port}"
    backend = serve_in_thread(create_fake_backend(connector_url + "/.well-known/jwks.json", site.url))
    config = ConnectorConfig(
        base_url=connector_url,
        backend_url=backend.url,
        database_url=f"sqlite:///{tmp_path}/connector-{port}.db",
        forge_jwks_url=site.url + "/_sandbox/forge/jwks.json",
        connect_install_keys_url=site.url + "/connect-install-keys",
    )
    app = create_app(config)
    return Stack(site, backend, serve_in_thread(app, port=port), app)
