"""On the terminal: the key map printed, the first Ctrl-C stops after the current step, the same command resumes."""

from __future__ import annotations

import os
import signal
import threading

import pytest
import requests

from backend.restore.execute import Restorer
from backend.restore.journal import Journal
from backend.restore.plan import RestoreRequest, build_plan
from backend.restore.progress import first_interrupt_stops, key_map_lines, resume_command
from tests.restore.conftest import Backed


def _delete(b: Backed) -> None:
    requests.post(f"{b.site.url}/_sandbox/delete", json={"project": "PLAT"}, timeout=30).raise_for_status()


def test_the_old_to_new_key_map_is_printed_and_in_json(backed):
    _delete(backed)
    status, out = backed.restore("--project", "--new-project", "KMAP")
    assert status == 0, out
    assert "keys (old -> new):" in out and "  PLAT-7 -> KMAP-" in out
    assert len([line for line in out.splitlines() if line.startswith("  PLAT-")]) == 40
    again = backed.restore_json("--project", "--new-project", "KMAP")
    assert len(again["mapping"]) == 40 and again["mapping"]["PLAT-7"].startswith("KMAP-")


def test_a_stop_ends_after_the_current_step_and_the_same_journal_resumes(backed, tmp_path):
    _delete(backed)
    plan = build_plan(
        backed.repo,
        RestoreRequest(backed.snapshot_id, whole_project=True, target="new", target_key="STOP"),
    )
    stop = threading.Event()

    def progress(event: dict) -> None:
        if event.get("created") == "comments":
            stop.set()  # as the first Ctrl-C does

    journal = Journal(str(tmp_path / "j.sqlite"))
    first = Restorer(backed.client, backed.repo, plan, journal, progress=progress, stop=stop).run()
    assert first.status == "stopped" and first.stopped
    assert "links" not in first.created and first.created.get("comments", 0) < plan.counts["comments"]
    second = Restorer(backed.client, backed.repo, plan, journal).run()
    journal.close()
    assert second.status == "ok"
    total = first.created.get("comments", 0) + second.created.get("comments", 0)
    assert total == plan.counts["comments"]
    assert second.created.get("issues", 0) + first.created.get("issues", 0) == 40
    comments = sum(
        backed.client.get_json(f"/rest/api/3/issue/{k}/comment")["total"] for k in second.mapping.values()
    )
    assert comments == plan.counts["comments"]


def test_the_first_ctrl_c_asks_to_stop_and_the_second_interrupts():
    stop = threading.Event()
    with first_interrupt_stops(stop):
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.wait(2)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            threading.Event().wait(2)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_the_resume_command_is_the_same_command_quoted():
    argv = [
        "restore",
        "--repo",
        "file:///tmp/my repo",
        "--snapshot",
        "ab12",
        "--project",
        "--new-project",
        "X",
    ]
    assert (
        resume_command(argv)
        == "keepstone restore --repo 'file:///tmp/my repo' --snapshot ab12 --project --new-project X"
    )
    assert key_map_lines({"A-10": "B-1", "A-9": "B-2", "A-1": "A-1"}) == ["  A-9 -> B-2", "  A-10 -> B-1"]


def test_only_configuration_restores_components_and_versions_into_an_existing_project(backed):
    me = backed.client.myself()["accountId"]
    backed.client.post_json(
        "/rest/api/3/project",
        {"key": "CFG", "name": "Config only", "projectTypeKey": "software", "leadAccountId": me},
    )
    out = backed.restore_json("--project", "--to-project", "CFG", "--only", "configuration")
    assert out["mapping"] == {} and "issues" not in out["created"]
    # PLAT's lead is in its Administrators role: added by accountId (CFG's lead is the restoring account).
    assert out["created"] == {"components": 3, "versions": 2, "role members": 1}
    assert not any("role members" in line for line in out["lost"])
    versions = {v["name"]: v for v in backed.client.get_json("/rest/api/3/project/CFG/versions")}
    backed_up = {
        v["name"]: v
        for v in backed.repo.read_json(backed.repo.snapshot(backed.snapshot_id).entries["config/versions"])
    }
    assert set(versions) == set(backed_up)
    for name, v in backed_up.items():
        assert versions[name]["released"] == v["released"] and versions[name].get("releaseDate") == v.get(
            "releaseDate"
        )
    components = {c["name"] for c in backed.client.get_json("/rest/api/3/project/CFG/components")}
    assert components == {"API", "UI", "Storage"}
    found = backed.client.get_json("/rest/api/3/search/jql", jql="project = CFG", fields="key")["issues"]
    assert found == []
    again = backed.restore_json("--project", "--to-project", "CFG", "--only", "configuration")
    assert again["created"] == {}


def test_sprints_come_back_with_their_state_on_the_new_projects_board(backed):
    _delete(backed)
    out = backed.restore_json("--project", "--new-project", "SPR")
    backed_up = backed.repo.read_json(backed.repo.snapshot(backed.snapshot_id).entries["config/sprints"])
    assert {s["state"] for s in backed_up} >= {"closed", "active"}
    board = next(
        b
        for b in backed.client.get_json("/rest/agile/1.0/board", projectKeyOrId="SPR")["values"]
        if b["type"] == "scrum"
    )
    restored = backed.client.paged(f"/rest/agile/1.0/board/{board['id']}/sprint", "values", 50)
    assert {s["name"]: s["state"] for s in restored} == {s["name"]: s["state"] for s in backed_up}
    assert out["created"]["sprints"] == len(backed_up)
    assert not [line for line in out["lost"] if line.startswith("sprint ")]
