"""The connector's test stack: a sandbox site, the real backend and the connector, each on its own
127.0.0.1 port, plus a helper that installs the app, signs tokens and reads the backend's state."""

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
from tests.conftest import start_sandbox


@dataclass
class Stack:
    """A running sandbox, backend and connector; `install()` puts the app on the site."""

    site: RunningServer
    backend: RunningServer
    connector: RunningServer
    app: object  # the connector Flask app (for reading its tenant store in assertions)
    backend_app: object = None  # the backend Flask app (for reading its database in assertions)

    def backend_state(self) -> tuple[dict, list]:
        """The backend's organisations (state, site, default plan schedule) and run ids, from its database."""
        from sqlalchemy import select

        from backend.db.models import Organisation, Run

        with self.backend_app.extensions["keepstone"].db.session() as s:
            orgs = {
                o.cloud_id: {
                    "state": o.state,
                    "site_url": o.site_url,
                    "plan": {"schedule": dict(next(p for p in o.plans if p.is_default).schedule)},
                }
                for o in s.scalars(select(Organisation))
            }
            runs = sorted(s.scalars(select(Run.id)))
        return orgs, runs

    def stop(self) -> None:
        from backend.app import shutdown

        for server in (self.connector, self.backend, self.site):
            server.stop()
        shutdown(self.backend_app)

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


def start_stack(tmp_path: Path, connector_options: dict | None = None, **site_options) -> Stack:
    """Start sandbox, backend and connector wired to each other (`connector_options` override the
    connector's configuration, e.g. its install-key server or its key file)."""
    site = start_sandbox(**{"projects": 2, "issues_per_project": 5, "seed": 3, **site_options})
    connector = serve_in_thread()  # bound first: the backend needs its URL (no port race)
    port, connector_url = connector.port, connector.url
    from backend.app import create_app as create_backend
    from backend.config import Config

    backend_app = create_backend(
        Config(
            data_dir=tmp_path / f"backend-{port}",
            connector_jwks_url=connector_url + "/.well-known/jwks.json",
            secret_key="connector-tests-" + "k" * 32,
            scheduler=False,
        )
    )
    backend = serve_in_thread(backend_app)
    options = {
        "base_url": connector_url,
        "backend_url": backend.url,
        "database_url": f"sqlite:///{tmp_path}/connector-{port}.db",
        "forge_jwks_url": site.url + "/_sandbox/forge/jwks.json",
        "connect_install_keys_url": site.url + "/connect-install-keys",
    }
    config = ConnectorConfig(**{**options, **(connector_options or {})})
    app = create_app(config)
    connector.mount(app)
    return Stack(site, backend, connector, app, backend_app)
