"""A writer killed with SIGKILL mid-snapshot leaves a repository that opens, checks clean and moves on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from backend.repository import Repository
from backend.storage import open_storage

PASSWORD = "pw"

WRITER = textwrap.dedent("""
    import os, sys
    from backend.repository import Repository
    from backend.storage import open_storage
    repo = Repository.open(open_storage(sys.argv[1]), "pw")
    with repo.lock():
        w = repo.start_snapshot("ABC", "http://site")
        n = 0
        while True:  # until killed: fill packs with incompressible items
            w.add_bytes(f"attachments/ABC-1/{n}", os.urandom(64 * 1024), "attachment")
            n += 1
            if n == 40:
                print("packs-written", flush=True)
""")


def test_sigkill_during_a_snapshot_loses_nothing_committed(tmp_path):
    url = f"file://{tmp_path}/repo"
    repo = Repository.init(open_storage(url), PASSWORD, pack_size=256 * 1024)
    w = repo.start_snapshot("ABC", "http://site")
    w.add_json("issues/ABC-1", {"kept": True}, "issue")
    kept = w.commit()

    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, url], stdout=subprocess.PIPE, text=True, cwd=os.getcwd()
    )
    assert proc.stdout.readline().strip() == "packs-written"
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)

    after = Repository.open(open_storage(url), PASSWORD)
    assert [s.id for s in after.snapshots()] == [kept]  # no half snapshot, the old one intact
    result = after.check(read_data=True)
    assert result.ok, result.errors
    # The killed writer stored packs (some may already be indexed, as it writes an index every few packs);
    # whatever no index lists is garbage only, reported as a warning.
    assert len(list(open_storage(url).list("data"))) > 10
    assert all("in no index" in w for w in result.warnings), result.warnings
    with after.lock():  # the dead writer's lock is stale
        w = after.start_snapshot("ABC", "http://site", parent=kept)
        w.add_json("issues/ABC-2", {"new": True}, "issue")
        new = w.commit()
    assert after.read_json(after.snapshot(new).entry("issues/ABC-2")) == {"new": True}
