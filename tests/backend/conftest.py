"""Backend fixtures: a connector-like token issuer with a JWKS, and a running backend (SQLite or PostgreSQL)."""

from __future__ import annotations

import ipaddress
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import psycopg
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, jsonify
from werkzeug.serving import make_server

from backend.app import create_app, shutdown
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
    tmp_path,
    issuer: Issuer,
    database_url: str | None = None,
    scheduler: bool = False,
    routes: Callable[[Flask], None] | None = None,
    ssl_context: Any = None,
    **config: Any,
) -> Backend:
    """A backend on a free 127.0.0.1 port; `config` overrides Config fields, `routes` adds test-only routes."""
    options: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "database_url": database_url or f"sqlite:///{tmp_path}/backend.db",
        "secret_key": "test-secret-key-" + "x" * 32,
        "connector_jwks_url": issuer.jwks_url,
        "scheduler": scheduler,
        "cookie_secure": "auto",  # the test servers are plain http on 127.0.0.1
        "ratelimit_key_prefix": f"keepstone-test-{uuid.uuid4().hex[:8]}",
    }
    cfg = Config(**{**options, **config})
    app = create_app(cfg)
    if routes is not None:
        routes(app)
    if ssl_context is not None:
        return Backend(serve_tls(app, ssl_context), app, cfg, issuer)
    return Backend(serve_in_thread(app), app, cfg, issuer)


@dataclass
class TlsServer:
    """A RunningServer look-alike for a backend served over https (a self-signed cert for 127.0.0.1)."""

    server: Any
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve_tls(app: Flask, ssl_context: Any) -> TlsServer:
    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=ssl_context)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return TlsServer(server, thread)


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory) -> tuple[str, str]:
    """A self-signed certificate and key for 127.0.0.1 (PEM paths): https without any outside CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)


def stop_backend(b: Backend) -> None:
    """Stop the server, then what the app started (backend.app.shutdown: its sender, scheduler, pools)."""
    b.server.stop()
    shutdown(b.app)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request, tmp_path, issuer) -> Iterator[Backend]:
    url = _postgres_url() if request.param == "postgres" else None
    b = make_backend(tmp_path, issuer, url)
    yield b
    stop_backend(b)


@pytest.fixture
def sqlite_backend(tmp_path, issuer) -> Iterator[Backend]:
    b = make_backend(tmp_path, issuer)
    yield b
    stop_backend(b)
