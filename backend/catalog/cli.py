"""`keepstone backend catalog rebuild [--org CLOUD_ID] [--json]`: the catalog again, from the repositories.

For each organisation, each distinct primary repository of its plans (a storage record, or the default
repository URL) is opened with the service's key and catalogued from nothing. The catalog is a cache of what
the repositories say: losing it loses nothing, and this command is how it comes back. Replicas are copies
of the primaries and are not catalogued.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_commands(sub_backend) -> None:
    c = sub_backend.add_parser("catalog", help="the snapshot catalog (what browsing and search read)")
    commands = c.add_subparsers(dest="catalog_command", required=True)
    r = commands.add_parser(
        "rebuild",
        help="rebuild the catalog from the repositories alone",
        epilog="examples:\n  keepstone backend catalog rebuild\n"
        "  keepstone backend catalog rebuild --org 6f0c1a52-9d3e-4c8b-a0f7-aaaaaaaaaaaa --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("--org", action="append", default=[], help="only this organisation (cloudId); repeatable")
    r.add_argument("--json", action="store_true", help="one JSON document on stdout")
    r.set_defaults(func=rebuild)


def _repositories(config, org) -> list[tuple[str, Any]]:
    """(label, open storage) of each distinct primary repository of the organisation's plans."""
    from backend import storages
    from backend.storage import open_storage

    seen: dict[str, Any] = {}
    for plan in org.plans:
        if plan.storage is not None:
            label = f"storage {plan.storage.name!r} ({plan.storage.public_id})"
            if label not in seen:
                target = storages.target_of(plan.storage, config, org.cloud_id)
                seen[label] = lambda target=target: storages.open_target(target, config)
        elif plan.storage_url not in seen:
            seen[plan.storage_url] = lambda url=plan.storage_url: open_storage(url)
    return list(seen.items())


def rebuild(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from backend import catalog, vault
    from backend.config import Config
    from backend.db import Database, migrate
    from backend.db.models import Organisation
    from backend.repository import Repository, RepositoryError
    from backend.storage import StorageError

    config = Config()
    migrate(config.database_url)
    db = Database(config.database_url)
    report: list[dict[str, Any]] = []
    failed = 0
    with db.session() as s:
        query = select(Organisation).order_by(Organisation.id)
        if args.org:
            query = query.where(Organisation.cloud_id.in_(args.org))
        orgs = list(s.scalars(query))
        missing = sorted(set(args.org) - {o.cloud_id for o in orgs})
        if missing:
            print(f"keepstone backend catalog rebuild: no organisation {', '.join(missing)}", file=sys.stderr)
            return 2
        work = [(o.id, o.cloud_id, _repositories(config, o)) for o in orgs]
    for org_id, cloud_id, repositories in work:
        password = vault.repository_password(config.secret_key, cloud_id)
        for label, opener in repositories:
            line: dict[str, Any] = {"organisation": cloud_id, "repository": label}
            try:
                repo = Repository.open(opener(), password)
                done = catalog.sync(db, org_id, repo, full=True)
            except RepositoryError as e:
                if "no repository" in str(e):
                    line |= {"state": "empty", "message": "no backups there yet"}
                else:
                    line |= {"state": "failed", "message": str(e)}
                    failed += 1
            except (StorageError, ValueError) as e:
                line |= {"state": "failed", "message": str(e)}
                failed += 1
            else:
                line |= {
                    "state": "rebuilt",
                    "snapshots": done.added,
                    "issues": done.issues,
                    "texts": done.texts_read,
                }
            report.append(line)
            if not args.json:
                print(_human(line))
    db.engine.dispose()
    if args.json:
        print(json.dumps({"repositories": report, "failed": failed}, indent=2))
    return 1 if failed else 0


def _human(line: dict[str, Any]) -> str:
    where = f"{line['organisation']} {line['repository']}"
    if line["state"] == "rebuilt":
        return f"{where}: {line['snapshots']} snapshots, {line['issues']} issue rows, {line['texts']} texts"
    return f"{where}: {line['state']}: {line['message']}"
