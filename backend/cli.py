"""The `keepstone backend` command: serve the management service, create local users."""

from __future__ import annotations

import argparse
import getpass
import os


def add_commands(sub) -> None:
    """Add `keepstone backend` to the `keepstone` parser."""
    p = sub.add_parser("backend", help="serve the management service on 127.0.0.1")
    p.add_argument("--port", type=int, default=int(os.environ.get("KEEPSTONE_BACKEND_PORT", "8090")))
    p.set_defaults(func=serve)
    sub_backend = p.add_subparsers(dest="backend_command")
    u = sub_backend.add_parser("create-user", help="create a local user of the management UI")
    u.add_argument("email")
    u.add_argument("--org", action="append", default=[], help="cloudId of an organisation the user may see")
    u.set_defaults(func=create_user)


def serve(args: argparse.Namespace) -> int:
    from backend.app import create_app
    from keepstone.servers import serve_forever

    app = create_app()
    print(f"Keepstone backend: http://127.0.0.1:{args.port}", flush=True)
    serve_forever(app, args.port)
    return 0


def create_user(args: argparse.Namespace) -> int:
    from sqlalchemy import select
    from werkzeug.security import generate_password_hash

    from backend.config import Config
    from backend.db import Database, migrate
    from backend.db.models import Membership, Organisation, User

    config = Config()
    migrate(config.database_url)
    db = Database(config.database_url)
    password = os.environ.get("KEEPSTONE_USER_PASSWORD") or getpass.getpass("Password: ")
    with db.session() as s:
        user = User(
            email=args.email.lower(), display_name=args.email, password_hash=generate_password_hash(password)
        )
        s.add(user)
        s.flush()
        for cloud_id in args.org:
            org = s.scalar(select(Organisation).where(Organisation.cloud_id == cloud_id))
            if org is None:
                print(f"keepstone: no organisation {cloud_id}")
                return 1
            s.add(Membership(user_id=user.id, organisation_id=org.id))
        s.commit()
    print(f"created user {args.email}")
    return 0
