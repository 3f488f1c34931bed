"""Print the spec-validation coverage figure: served spec operations that the tests validated.

Run: `.venv/bin/python -m tests.sandbox.coverage` (runs tests/sandbox once with recording switched on).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile

from sandbox.app import create_app
from sandbox.config import SandboxConfig
from tests.sandbox.validate import find_operation

NOT_JIRA = ("/_sandbox", "/_edge", "/_media", "/static")


def served_operations(flavor: str = "cloud") -> dict[str, str]:
    """Return "METHOD /template" -> Flask rule for every spec operation the sandbox serves."""
    app = create_app(SandboxConfig(projects=1, issues_per_project=2, flavor=flavor))
    out: dict[str, str] = {}
    for rule in app.url_map.iter_rules():
        if rule.rule == "/" or rule.rule.startswith(NOT_JIRA) or not rule.rule.startswith("/rest/"):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", "1", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found = find_operation(method.lower(), path)
            out[f"{method} {found[1] if found else rule.rule + ' (NOT IN SPEC)'}"] = rule.rule
    return out


def main() -> int:
    with tempfile.NamedTemporaryFile(suffix=".txt", delete=False) as fh:
        record = fh.name
    env = {**os.environ, "KEEPSTONE_SPEC_COVERAGE": record}
    cmd = [sys.executable, "-m", "pytest", "tests/sandbox", "-q", "-n", "4", "-p", "no:cacheprovider"]
    subprocess.run(cmd, env=env, check=False, stdout=subprocess.DEVNULL)
    with open(record) as fh:
        validated = {" ".join(line.split()[:2]) for line in fh}
    os.unlink(record)
    served = served_operations() | served_operations("datacenter")
    hit = set(served) & validated
    for op in sorted(set(served) - validated):
        print("not validated:", op)
    print(f"spec-validated operations: {len(hit)}/{len(served)} served ({100 * len(hit) / len(served):.0f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
