"""The `keepstone sandbox` command: serve a simulated Jira Cloud site on 127.0.0.1."""

from __future__ import annotations

import argparse
import re
import socket
import sys


def _rate(value: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(?:/s)?", value.strip())
    if not m:
        raise argparse.ArgumentTypeError("rate limit looks like 10/s")
    return float(m.group(1))


def add_commands(sub) -> None:
    """Add `keepstone sandbox` to the `keepstone` parser."""
    p = sub.add_parser("sandbox", help="serve a simulated Jira Cloud site on 127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--projects", type=int, default=3)
    p.add_argument("--issues", type=int, default=40, help="issues per project")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument(
        "--rate-limit", type=_rate, default=0.0, help="requests per second per credential, e.g. 20/s"
    )
    p.add_argument("--burst", type=int, default=0)
    p.add_argument("--quota-points", type=int, default=0, help="hourly points quota per credential")
    p.add_argument("--fault-rate", type=float, default=0.0)
    p.add_argument("--attachment-share", type=float, default=0.3, help="share of issues with attachments")
    p.add_argument("--attachment-max-bytes", type=int, default=2 * 1024 * 1024)
    p.add_argument("--large-attachment-share", type=float, default=0.0)
    p.add_argument("--corrupt-share", type=float, default=0.05)
    p.add_argument("--flavor", choices=("cloud", "datacenter"), default="cloud")
    p.add_argument("--admin-email", default="admin@example.com")
    p.add_argument("--admin-token", default="sandbox-admin-token")
    p.add_argument("--site-file", help="load the site from a JSON file (docs/sandbox.md)")
    p.set_defaults(func=run)


def port_taken(port: int, host: str = "127.0.0.1") -> str | None:
    """Why the port cannot be served on (e.g. another process listens there), or None when it is free."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            return e.strerror or str(e)
    return None


def run(args: argparse.Namespace) -> int:
    from keepstone.servers import serve_forever
    from sandbox.app import create_app
    from sandbox.config import SandboxConfig
    from sandbox.sitefile import SiteFileError

    busy = port_taken(args.port)
    if busy is not None:
        print(
            f"keepstone sandbox: port {args.port} on 127.0.0.1 is not free ({busy}); "
            "stop what uses it or pick another with --port",
            file=sys.stderr,
        )
        return 1

    config = SandboxConfig(
        projects=args.projects,
        issues_per_project=args.issues,
        seed=args.seed,
        latency_ms=args.latency_ms,
        rate_limit=args.rate_limit,
        burst=args.burst,
        quota_points_per_hour=args.quota_points,
        fault_rate=args.fault_rate,
        attachment_share=args.attachment_share,
        attachment_max_bytes=args.attachment_max_bytes,
        attachment_large_share=args.large_attachment_share,
        corrupt_share=args.corrupt_share,
        flavor=args.flavor,
        admin_email=args.admin_email,
        admin_token=args.admin_token,
        site_file=args.site_file,
    )
    try:
        app = create_app(config)
    except SiteFileError as e:
        print(f"keepstone sandbox: {e}", file=sys.stderr)
        return 2
    site = app.extensions["sandbox"].site
    url = f"http://127.0.0.1:{args.port}"
    issues = sum(1 for i in site.issues.values() if not i.deleted)
    print(
        f"Sandbox Jira site: {url}  (cloudId {site.cloud_id}, {len(site.projects)} projects, {issues} issues)"
    )
    print(f"  admin:  {config.admin_email} / API token {config.admin_token}")
    print(
        f"  viewer: {config.viewer_email} / API token {config.viewer_token} (cannot browse the last project)"
    )
    print(f"  try:    curl -u {config.admin_email}:{config.admin_token} {url}/rest/api/3/myself", flush=True)
    try:
        serve_forever(app, args.port)
    except OSError as e:  # taken between the check and the bind
        print(f"keepstone sandbox: cannot serve on port {args.port}: {e.strerror or e}", file=sys.stderr)
        return 1
    return 0
