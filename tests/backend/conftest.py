"""Backend fixtures: a connector-like token issuer with a JWKS, and a running backend (SQLite or PostgreSQL)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import jwt
import psycopg
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, jsonify

from backend.app import create_app
from backend.config import Config
from keepstone.servers import RunningServer, serve_in_thread

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


class Issuer:
    """Plays the connector: RSA keys, a JWKS endpoint, and token minting (good and deliberately bad)."""

    def __init__(self) -> None:
        self.keys = {"k1": rsa.generate_private_key(public_exponent=65537, key_size=2048)}
        app = Flask("jwks")

        @app.get("/.well-known/jwks.json")
        def jwks():
            out = []
            for kid, key in self.keys.items():
                jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
                out.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
            return jsonify({"keys": out})

        self.server = serve_in_thread(app)
        self.jwks_url = f"{self.server.url}/.well-known/jwks.json"

    def token(
        self,
        tenant: str,
        *,
        typ: str = "service+jwt",
        aud: str = "keepstone-backend",
        kid: str = "k1",
        iss: str = "keepstone-connector",
        sub: str = "connector",
        lifetime: int = 60,
        **claims,
    ) -> str:
        now = int(time.time())
        payload = {
            "iss": iss,
            "aud": aud,
            "sub": sub,
            "tenant": tenant,
            "iat": now,
            "exp": now + lifetime,
            "jti": uuid.uuid4().hex,
            **claims,
        }
        return jwt.encode(
            payload, self.keys.get(kid, self.keys["k1"]), algorithm="RS256", headers={"kid": kid, "typ": typ}
        )

    def headers(self, tenant: str, **kw) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(tenant, **kw)}"}


@pytest.fixture(scope="session")
def issuer() -> Iterator[Issuer]:
    i = Issuer()
    yield i
    i.server.stop()


def _postgres_url() -> str:
    name = f"keepstone_test_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as e:
        pytest.skip(f"PostgreSQL is not reachable on 127.0.0.1:5432: {e}")
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


@dataclass
class Backend:
    server: RunningServer
    app: Flask
    config: Config
    issuer: Issuer

    @property
    def url(self) -> str:
        return self.server.url

    def call(self, method: str, path: str, tenant: str | None = None, **kw) -> requests.Response:
        headers = dict(kw.pop("headers", {}) or {})
        if tenant is not None:
            headers.update(self.issuer.headers(tenant))
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kw)

    def install(self, tenant: str, site_url: str, time_zone: str = "UTC") -> dict:
        r = self.call(
            "PUT",
            f"/api/v1/organisations/{tenant}",
            tenant,
            json={"site_url": site_url, "display_name": "Acme", "time_zone": time_zone},
        )
        assert r.status_code in (200, 201), r.text
        return r.json()

    def wait_for_run(self, tenant: str, run_id: int, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.call("GET", f"/api/v1/runs/{run_id}", tenant).json()
            if run["state"] not in ("queued", "running"):
                return run
            time.sleep(0.2)
        raise AssertionError(f"run {run_id} did not finish: {run}")


def make_backend(
    tmp_path, issuer: Issuer, database_url: str | None = None, scheduler: bool = False
) -> Backend:
    config = Config(
        data_dir=tmp_path / "data",
        database_url=database_url or f"sqlite:///{tmp_path}/backend.db",
        secret_key="test-secret-key-" + "x" * 32,
        connector_jwks_url=issuer.jwks_url,
        scheduler=scheduler,
    )
    app = create_app(config)
    return Backend(serve_in_thread(app), app, config, issuer)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request, tmp_path, issuer) -> Iterator[Backend]:
    url = _postgres_url() if request.param == "postgres" else None
    b = make_backend(tmp_path, issuer, url)
    yield b
    b.server.stop()
    svc = b.app.extensions["keepstone"]
    svc.runs.executor.shutdown()
    svc.db.engine.dispose()


@pytest.fixture
def sqlite_backend(tmp_path, issuer) -> Iterator[Backend]:
    b = make_backend(tmp_path, issuer)
    yield b
    b.server.stop()
    b.app.extensions["keepstone"].db.engine.dispose()
