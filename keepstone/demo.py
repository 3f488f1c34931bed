"""`keepstone run`: sandbox, backend and connector together on localhost (the demo).

Everything binds 127.0.0.1 and keeps its state under var/ (sqlite databases, the local backup folder,
the connector's signing key). The one URL printed is the sandbox's Apps page, where Jira shows the app:
`/plugins/servlet/ac/keepstone/keepstone-admin`.
"""

from __future__ import annotations

import argparse
import socket
import threading
from pathlib import Path


def add_commands(sub) -> None:
    """Add `keepstone run` to the `keepstone` parser."""
    p = sub.add_parser("run", help="start sandbox, backend and connector on 127.0.0.1 and install the app")
    p.add_argument("--sandbox-port", type=int, default=8080)
    p.add_argument("--backend-port", type=int, default=8010)
    p.add_argument("--connector-port", type=int, default=8020)
    p.add_argument("--var", default="var", help="folder for databases, keys and backups (default ./var)")
    p.set_defaults(func=run)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_stack(var: Path, sandbox_port: int = 0, backend_port: int = 0, connector_port: int = 0) -> dict:
    """Start the three servers and install the app into the sandbox site; return servers and Apps page URL."""
    import requests

    from connector.app import create_app as create_connector
    from connector.config import ConnectorConfig
    from keepstone.servers import serve_in_thread
    from sandbox.app import create_app as create_sandbox
    from sandbox.config import SandboxConfig

    var = var.resolve()
    var.mkdir(parents=True, exist_ok=True)
    backend_port = backend_port or free_port()
    connector_port = connector_port or free_port()
    backend_url = f"http://127.0.0.1:{backend_port}"
    connector_url = f"http://127.0.0.1:{connector_port}"
    servers = {"sandbox": serve_in_thread(create_sandbox(SandboxConfig()), port=sandbox_port)}
    site_url = servers["sandbox"].url
    from backend.app import create_app as create_backend
    from backend.config import Config as BackendConfig

    backend_config = BackendConfig(
        data_dir=var / "backend",
        connector_jwks_url=connector_url + "/.well-known/jwks.json",
        cookie_secure="auto",  # the demo is plain http on 127.0.0.1; "on" (the default) needs https
    )
    backend_app = create_backend(backend_config)
    servers["backend"] = serve_in_thread(backend_app, port=backend_port)
    config = ConnectorConfig(
        base_url=connector_url,
        backend_url=backend_url,
        database_url=f"sqlite:///{var / 'connector.db'}",
        forge_jwks_url=site_url + "/_sandbox/forge/jwks.json",
        connect_install_keys_url=site_url + "/connect-install-keys",
        key_file=str(var / "connector-key.pem"),
    )
    servers["connector"] = serve_in_thread(create_connector(config), port=connector_port)
    resp = requests.post(
        site_url + "/_sandbox/apps/install", json={"connector_url": connector_url}, timeout=60
    )
    resp.raise_for_status()
    install = resp.json()
    failed = [e for e in install["events"] if e["status"] >= 300]
    if failed:
        raise RuntimeError(f"install events failed: {failed}")
    return {
        "servers": servers,
        "apps_page": install["appsPage"],
        "cloud_id": install["cloudId"],
        "backend_app": backend_app,
    }


def stop_stack(stack: dict) -> None:
    """Stop the servers and the backend's scheduler and workers."""
    from backend.app import shutdown

    for server in reversed(list(stack["servers"].values())):
        server.stop()
    shutdown(stack["backend_app"])


def run(args: argparse.Namespace) -> int:
    """Run the demo until Ctrl-C."""
    stack = start_stack(Path(args.var), args.sandbox_port, args.backend_port, args.connector_port)
    print(f"Keepstone is running. Open: {stack['apps_page']}", flush=True)
    print(
        "(admin@example.com / sandbox-admin-token is the sandbox's API token; Ctrl-C stops all)", flush=True
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop_stack(stack)
    return 0
