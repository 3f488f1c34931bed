"""The `keepstone connector` command: serve the app Jira talks to on 127.0.0.1."""

from __future__ import annotations

import argparse


def add_commands(sub) -> None:
    """Add `keepstone connector` to the `keepstone` parser."""
    p = sub.add_parser(
        "connector", help="serve the Keepstone app for Jira (Forge remote / Connect) on 127.0.0.1"
    )
    p.add_argument("--port", type=int, default=8020)
    p.add_argument("--base-url", help="the connector's public URL (default http://127.0.0.1:PORT)")
    p.add_argument("--backend-url", help="the backend's URL (KEEPSTONE_CONNECTOR_BACKEND_URL)")
    p.add_argument("--database-url", help="tenant database (default sqlite:///var/connector.db)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from connector.app import create_app
    from connector.config import ConnectorConfig
    from keepstone.servers import serve_forever

    config = ConnectorConfig.from_env(
        base_url=args.base_url or f"http://127.0.0.1:{args.port}",
        backend_url=args.backend_url,
        database_url=args.database_url,
    )
    print(
        f"Keepstone connector on http://127.0.0.1:{args.port} (descriptor /atlassian-connect.json)",
        flush=True,
    )
    serve_forever(create_app(config), port=args.port)
    return 0
