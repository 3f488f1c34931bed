"""`keepstone backup --time` and `keepstone forget` as real processes against the sandbox site."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.backup.test_cli_errors import backup, fingerprint, keepstone

# Europe/Berlin: s1 is Saturday 28 March there but Friday 27 March in UTC; s4 is after the switch to CEST
TIMES = {
    "s1": "2026-03-28T00:30:00+01:00",
    "s2": "2026-03-28T10:00:00+01:00",
    "s3": "2026-03-28T20:00:00+01:00",
    "s4": "2026-03-29T03:30:00+02:00",
    "s5": "2026-03-30T09:00:00+02:00",
}


@pytest.fixture(scope="module")
def history(sandbox_site, tmp_path_factory) -> tuple[str, dict[str, str]]:
    """A repository with five snapshots of PLAT at the TIMES; name -> snapshot id."""
    folder = tmp_path_factory.mktemp("forget")
    url = f"file://{folder}/repo"
    ids = {}
    for name, moment in TIMES.items():
        done = backup(sandbox_site.url, url, "--init", "--projects", "PLAT", "--time", moment, "--json")
        assert done.returncode == 0, done.stderr
        ids[name] = json.loads(done.stdout)["projects"][0]["snapshot_id"]
    return url, ids


def snapshots(url: str) -> list[dict]:
    done = keepstone("snapshots", "--repo", url, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_backup_time_records_the_snapshot_at_that_moment(history):
    url, ids = history
    listed = {s["id"]: s["time"] for s in snapshots(url)}
    assert listed[ids["s1"]] == "2026-03-27T23:30:00.000+00:00"
    assert listed[ids["s4"]] == "2026-03-29T01:30:00.000+00:00"


BAD_FLAGS = [
    (["--keep-daily", "-1"], "keepstone: --keep-daily: must not be negative"),
    (["--keep-daily", "seven"], "keepstone: --keep-daily: 'seven' is not a whole number"),
    (["--keep-within", "30x"], "keepstone: --keep-within: '30x' is not a duration"),
    (["--keep-forever", "3"], "keepstone forget: unknown option or argument '--keep-forever'"),
    (["--keep-daily", "0"], "keepstone: every --keep-* rule given is 0"),
    ([], "keepstone: give at least one --keep-* rule"),
    (["--keep-daily", "3", "--time-zone", "Mars/Olympus"], "keepstone: --time-zone: 'Mars/Olympus'"),
    (["--keep-daily", "3", "deadbeef"], "keepstone: give snapshot ids or --keep-* rules, not both"),
]


@pytest.mark.parametrize("flags, message", BAD_FLAGS)
def test_bad_flags_are_one_clear_line_and_change_nothing(history, flags, message):
    url, _ = history
    folder = url.removeprefix("file://")
    before = fingerprint(Path(folder))
    done = keepstone("forget", "--repo", url, *flags)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), done.stderr
    assert fingerprint(Path(folder)) == before


def test_a_bad_backup_time_is_refused(sandbox_site, history):
    url, _ = history
    done = backup(sandbox_site.url, url, "--projects", "PLAT", "--time", "2026-03-28T10:00:00")
    assert done.returncode == 2 and "--time: give '2026-03-28T10:00:00' with its UTC offset" in done.stderr
    assert len(snapshots(url)) == len(TIMES)


def test_dry_run_then_forget_by_days_in_the_organisations_zone(history):
    url, ids = history
    name = {v: k for k, v in ids.items()}
    # in UTC, s1 falls on Friday: four days hold snapshots, so keep-daily 4 keeps s1 too
    done = keepstone("forget", "--repo", url, "--keep-daily", "4", "--dry-run", "--json")
    plan = json.loads(done.stdout)
    assert sorted(name[v["id"]] for v in plan["forget"]) == ["s2"] and plan["removed"] == []
    # in Berlin it is Saturday: three days only, the newest of each
    done = keepstone(
        "forget", "--repo", url, "--keep-daily", "4", "--time-zone", "Europe/Berlin", "--dry-run", "--json"
    )
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert sorted(name[v["id"]] for v in plan["forget"]) == ["s1", "s2"]
    assert {name[v["id"]]: v["reasons"] for v in plan["keep"]} == {
        "s5": ["daily"],
        "s4": ["daily"],
        "s3": ["daily"],
    }
    assert len(snapshots(url)) == 5  # a dry run changes nothing

    marked = keepstone("keep", "--repo", url, ids["s2"][:10], "--note", "audit")
    assert marked.returncode == 0 and "marked kept" in marked.stdout
    done = keepstone("forget", "--repo", url, "--keep-daily", "4", "--time-zone", "Europe/Berlin")
    assert done.returncode == 0, done.stderr
    assert "PLAT: kept 4 of 5" in done.stdout and "marked keep: " + ids["s2"][:8] in done.stdout
    assert "forgot 1: " + ids["s1"][:8] in done.stdout
    left = snapshots(url)
    assert sorted(name[s["id"]] for s in left) == ["s2", "s3", "s4", "s5"]
    assert [s["keep"] for s in left if s["id"] == ids["s2"]] == [True]

    again = keepstone("forget", "--repo", url, "--keep-daily", "4", "--time-zone", "Europe/Berlin", "--json")
    assert json.loads(again.stdout)["forget"] == []  # forgetting twice changes nothing
    check = keepstone("check", "--repo", url, "--read-data")
    assert check.returncode == 0 and "no errors: 4 snapshots" in check.stdout

    # a marked snapshot is not forgotten even by id; an unmarked one is, even a project's newest
    refused = keepstone("forget", "--repo", url, ids["s2"][:10])
    assert refused.returncode == 1 and "marked kept" in refused.stderr
    gone = keepstone("forget", "--repo", url, ids["s5"][:10])
    assert gone.returncode == 0 and ids["s5"][:8] in gone.stdout
    assert sorted(name[s["id"]] for s in snapshots(url)) == ["s2", "s3", "s4"]
