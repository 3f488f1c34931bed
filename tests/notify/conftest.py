"""Notification fixtures: a real SMTP server (aiosmtpd, STARTTLS and AUTH), a real HTTP receiver that
answers a script of statuses, and a backend wired to both on 127.0.0.1."""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from flask import Flask, request

from keepstone.servers import RunningServer, serve_in_thread
from tests.backend.conftest import Backend, issuer, make_backend, stop_backend, tls_cert  # noqa: F401
from tests.conftest import ADMIN_EMAIL, ADMIN_TOKEN, free_port, start_sandbox

TENANT = "cccccccc-1111-4222-8333-444444444444"
SMTP_USER, SMTP_PASSWORD = "keepstone", "smtp-test-password"


@dataclass
class Hit:
    time: float
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1: records every request; answers `script` in order, then 200."""

    server: RunningServer
    hits: list[Hit] = field(default_factory=list)
    script: list[int] = field(default_factory=list)
    delay_first: float = 0.0  # sleep before answering the first request (a receiver slower than our timeout)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return self.server.url + "/hook"

    def wait_for(self, n: int, timeout: float = 20) -> list[Hit]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.hits) >= n:
                    return list(self.hits)
            time.sleep(0.05)
        raise AssertionError(f"{len(self.hits)} requests arrived, {n} expected")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    app = Flask("receiver")
    holder: dict[str, Receiver] = {}

    @app.post("/hook")
    def hook():
        r = holder["r"]
        with r.lock:
            r.hits.append(Hit(time.monotonic(), dict(request.headers), request.get_data()))
            first = len(r.hits) == 1
            status = r.script.pop(0) if r.script else 200
        if first and r.delay_first:
            time.sleep(r.delay_first)
        return ("busy", status) if status >= 300 else ("ok", status)

    server = serve_in_thread(app)
    holder["r"] = Receiver(server)
    yield holder["r"]
    server.stop()


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []
        self.auth: list[str] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd calls it by this name
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


@dataclass
class Smtp:
    host: str
    port: int
    inbox: _Inbox

    def wait_for(self, n: int, timeout: float = 20) -> list[tuple[list[str], Message]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.inbox.messages) >= n:
                return list(self.inbox.messages)
            time.sleep(0.05)
        raise AssertionError(f"{len(self.inbox.messages)} emails arrived, {n} expected")


@pytest.fixture(scope="package")
def smtp(tls_cert) -> Iterator[Smtp]:  # noqa: F811 (the fixture imported above)
    """aiosmtpd with STARTTLS required before AUTH (a self-signed certificate for 127.0.0.1), one for the package."""
    cert, key = tls_cert
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = _Inbox()

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == SMTP_USER.encode() and auth_data.password == SMTP_PASSWORD.encode()
        inbox.auth.append(f"{mechanism}:{'ok' if ok else 'refused'}")
        return AuthResult(success=ok)

    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        auth_require_tls=True,
        authenticator=authenticate,
    )
    controller.start()
    yield Smtp("127.0.0.1", port, inbox)
    controller.stop()


def notify_backend(tmp_path, issuer, smtp: Smtp | None, cert: str, **config: Any) -> Backend:  # noqa: F811
    options: dict[str, Any] = {
        "webhook_http_hosts": "127.0.0.1",
        "notify_backoff_seconds": 0.3,
        "notify_poll_seconds": 0.5,
        "notify_timeout_seconds": 5,
        "smtp_ca_file": cert,
        "smtp_user": SMTP_USER,
        "smtp_password": SMTP_PASSWORD,
        "smtp_from": "Keepstone <keepstone@example.com>",
    }
    if smtp is not None:
        options.update(smtp_host=smtp.host, smtp_port=smtp.port)
    b = make_backend(tmp_path, issuer, **{**options, **config})
    b.config.public_url = b.url  # links in messages point at this backend
    return b


@dataclass
class Org:
    """An organisation of its own for one test (installed on the shared site, with the admin's token)."""

    cloud_id: str

    @property
    def base(self) -> str:
        return f"/api/v1/organisations/{self.cloud_id}/notifications"


@pytest.fixture(scope="package")
def site() -> Iterator[RunningServer]:
    """A small site for these tests (a test that breaks it with faults clears them)."""
    with start_sandbox(projects=2, issues_per_project=10, seed=11) as s:
        yield s


@pytest.fixture(scope="package")
def backend(tmp_path_factory, issuer, smtp, tls_cert, site) -> Iterator[Backend]:  # noqa: F811
    """One backend for these tests with SMTP and webhooks wired; each test works in an organisation of its own."""
    b = notify_backend(tmp_path_factory.mktemp("notify"), issuer, smtp, tls_cert[0])
    b.site = site  # type: ignore[attr-defined]
    yield b
    stop_backend(b)


@pytest.fixture
def org(backend) -> Org:
    cloud_id = str(uuid.uuid4())
    backend.install(cloud_id, backend.site.url)
    r = backend.call(
        "PUT",
        f"/api/v1/organisations/{cloud_id}/account",
        cloud_id,
        json={"email": ADMIN_EMAIL, "api_token": ADMIN_TOKEN},
    )
    assert r.status_code == 200, r.text
    return Org(cloud_id)
