"""`keepstone run`: sandbox, backend and connector together on localhost (the demo).

Everything binds 127.0.0.1 and keeps its state under var/ (sqlite databases, the local backup folder,
the connector's signing key). The app is installed on the sandbox site both ways, as one tenant: through
Forge (the default: the Custom UI that `make install` builds into manifest/build/panel, on the Forge
admin page `/jira/settings/apps/<app>/<environment>`) and through Connect (`/plugins/servlet/ac/keepstone/
keepstone-admin`). Without the built Custom UI only the Connect page is there, and the banner says so.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
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


SANDBOX_EMAIL, SANDBOX_TOKEN = "admin@example.com", "sandbox-admin-token"
ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "manifest" / "manifest.yml"
CUSTOM_UI = ROOT / "manifest" / "build" / "panel" / "index.html"


def start_stack(
    var: Path,
    sandbox_port: int = 0,
    backend_port: int = 0,
    connector_port: int = 0,
    preset_account: bool = False,
    forge: bool | None = None,
) -> dict:
    """Start the three servers and install the app into the sandbox site; return servers and Apps pages.

    With `preset_account`, the sandbox admin's API token is set as the tenant's Jira credentials (as an
    admin would in Settings), so the first Backup now works. `forge` (default: when the Custom UI is
    built) also deploys the Forge app from manifest/manifest.yml; `apps_page` is then its admin page,
    and `connect_apps_page` the Connect one.
    """
    import requests

    from connector.app import create_app as create_connector
    from connector.config import ConnectorConfig
    from keepstone.servers import serve_in_thread
    from sandbox.app import create_app as create_sandbox
    from sandbox.config import SandboxConfig

    var = var.resolve()
    var.mkdir(parents=True, exist_ok=True)
    # Bound before the apps exist (they need each other's URLs), so no other process takes a port.
    servers = {
        "sandbox": serve_in_thread(create_sandbox(SandboxConfig()), port=sandbox_port),
        "backend": serve_in_thread(port=backend_port),
        "connector": serve_in_thread(port=connector_port),
    }
    backend_url, connector_url = servers["backend"].url, servers["connector"].url
    site_url = servers["sandbox"].url
    from backend.app import create_app as create_backend
    from backend.config import Config as BackendConfig

    backend_config = BackendConfig(
        data_dir=var / "backend",
        connector_jwks_url=connector_url + "/.well-known/jwks.json",
        cookie_secure="auto",  # the demo is plain http on 127.0.0.1; "on" (the default) needs https
        public_url=backend_url,  # links in notifications point at this demo's pages
    )
    backend_app = create_backend(backend_config)
    servers["backend"].mount(backend_app)
    config = ConnectorConfig(
        base_url=connector_url,
        backend_url=backend_url,
        database_url=f"sqlite:///{var / 'connector.db'}",
        forge_jwks_url=site_url + "/_sandbox/forge/jwks.json",
        connect_install_keys_url=site_url + "/connect-install-keys",
        key_file=str(var / "connector-key.pem"),
    )
    connector_app = create_connector(config)
    servers["connector"].mount(connector_app)
    forge = CUSTOM_UI.exists() if forge is None else forge
    body = {"connector_url": connector_url}
    if forge:
        body["forge_manifest"] = str(MANIFEST)
    resp = requests.post(site_url + "/_sandbox/apps/install", json=body, timeout=60)
    resp.raise_for_status()
    install = resp.json()
    failed = [e for e in install["events"] if e["status"] >= 300]
    if failed:
        raise RuntimeError(f"install events failed: {failed}")
    if preset_account:
        answer = connector_app.extensions["connector"].backend.call(
            "PUT",
            f"/api/v1/organisations/{install['cloudId']}/account",
            install["cloudId"],
            {"email": SANDBOX_EMAIL, "api_token": SANDBOX_TOKEN},
        )
        if answer.status_code != 200:
            raise RuntimeError(
                f"the sandbox's API token was refused: {answer.status_code} {answer.text[:200]}"
            )
    return {
        "servers": servers,
        "apps_page": install.get("forgeAppsPage") or install["appsPage"],
        "forge_apps_page": install.get("forgeAppsPage"),
        "connect_apps_page": install["appsPage"],
        "cloud_id": install["cloudId"],
        "backend_app": backend_app,
    }


def stop_stack(stack: dict) -> None:
    """Stop the servers and the backend's scheduler and workers."""
    from backend.app import shutdown

    for server in reversed(list(stack["servers"].values())):
        server.stop()
    shutdown(stack["backend_app"])


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


BANNER = """\
Keepstone is running on 127.0.0.1 (a simulated Jira Cloud site, the backend and the connector).

  Open Jira's Apps page:  {apps_page}{kind}
  {other}
  Management service:     {backend}  (More features signs you in)

The sandbox's API token is already set (Settings: {email} / {token}), so Backup now works at once.
Logs: {log}  (KEEPSTONE_LOG_LEVEL=info shows them here too). Ctrl-C stops everything."""


def run(args: argparse.Namespace) -> int:
    """Run the demo until Ctrl-C."""
    from keepstone import logs

    var = Path(args.var)
    busy = [
        f"{name} port {port}"
        for name, port in (
            ("sandbox", args.sandbox_port),
            ("backend", args.backend_port),
            ("connector", args.connector_port),
        )
        if port and port_in_use(port)
    ]
    if busy:
        print(
            f"keepstone run: {', '.join(busy)} already in use (choose others with --sandbox-port, "
            "--backend-port, --connector-port)",
            file=sys.stderr,
        )
        return 2
    log_file = var / "log" / "keepstone.jsonl"
    logs.configure(level=os.environ.get("KEEPSTONE_LOG_LEVEL") or "warning", file=log_file)
    stack = start_stack(var, args.sandbox_port, args.backend_port, args.connector_port, preset_account=True)
    print(
        BANNER.format(
            apps_page=stack["apps_page"],
            kind="  (the Forge app)" if stack["forge_apps_page"] else "",
            other=(
                f"The same on Connect:    {stack['connect_apps_page']}"
                if stack["forge_apps_page"]
                else "(that is the Connect app: `make install` builds the Forge Custom UI, shown by default)"
            ),
            backend=stack["servers"]["backend"].url,
            email=SANDBOX_EMAIL,
            token=SANDBOX_TOKEN,
            log=log_file,
        ),
        flush=True,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        print("\nStopping ...", flush=True)
    finally:
        stop_stack(stack)
    return 0
