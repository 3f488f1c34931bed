"""Jira Software reads: boards, board configuration, sprints and their issues (agile spec)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def board(jira) -> dict:
    return jira.get("/rest/agile/1.0/board")["values"][0]


def test_boards_page_to_the_last_page(jira):
    boards, start = [], 0
    while True:
        page = jira.get("/rest/agile/1.0/board", params={"startAt": start, "maxResults": 1})
        boards += page["values"]
        start += len(page["values"])
        if page["isLast"]:
            break
    assert len(boards) >= 3 and len({b["id"] for b in boards}) == len(boards)


def test_boards_filter_by_project(jira, board):
    key = board["location"]["projectKey"]
    page = jira.get("/rest/agile/1.0/board", params={"projectKeyOrId": key})
    assert page["values"] and all(b["location"]["projectKey"] == key for b in page["values"])


def test_board_and_its_configuration(jira, board):
    assert jira.get(f"/rest/agile/1.0/board/{board['id']}")["id"] == board["id"]
    config = jira.get(f"/rest/agile/1.0/board/{board['id']}/configuration")
    assert config["columnConfig"]["columns"]
    assert config["filter"]["id"]


def test_sprints_of_a_scrum_board_and_their_issues(jira):
    scrum = next(b for b in jira.get("/rest/agile/1.0/board")["values"] if b["type"] == "scrum")
    sprints = jira.get(f"/rest/agile/1.0/board/{scrum['id']}/sprint")["values"]
    assert {s["state"] for s in sprints} >= {"closed", "active"}
    one = jira.get(f"/rest/agile/1.0/sprint/{sprints[0]['id']}")
    assert one["name"] == sprints[0]["name"]
    issues = [i for s in sprints for i in jira.get(f"/rest/agile/1.0/sprint/{s['id']}/issue")["issues"]]
    assert issues


def test_board_issues_are_a_search_result(jira, board):
    body = jira.get(f"/rest/agile/1.0/board/{board['id']}/issue", params={"maxResults": 5})
    assert body["issues"] and body["total"] >= len(body["issues"])


def test_unknown_board_is_404(jira):
    jira.get("/rest/agile/1.0/board/999999", expect=404)


def test_a_sprint_can_be_created_on_a_scrum_board_and_read_back(fresh):
    board = next(b for b in fresh.get("/rest/agile/1.0/board")["values"] if b["type"] == "scrum")
    created = fresh.post(
        "/rest/agile/1.0/sprint",
        {
            "name": "Restored sprint",
            "originBoardId": board["id"],
            "goal": "Ship",
            "startDate": "2026-01-05T09:00:00.000+0000",
        },
        expect=201,
    )
    assert created["state"] == "future" and created["originBoardId"] == board["id"]
    assert fresh.get(f"/rest/agile/1.0/sprint/{created['id']}")["name"] == "Restored sprint"
    fresh.post("/rest/agile/1.0/sprint", {"name": "", "originBoardId": 999}, expect=400)


def test_a_sprint_moves_future_to_active_to_closed_and_no_other_way(fresh):
    board = next(b for b in fresh.get("/rest/agile/1.0/board")["values"] if b["type"] == "scrum")
    for s in fresh.get(f"/rest/agile/1.0/board/{board['id']}/sprint")["values"]:
        if s["state"] == "active":
            fresh.post(f"/rest/agile/1.0/sprint/{s['id']}", {"state": "closed"})
    new = fresh.post("/rest/agile/1.0/sprint", {"name": "Moves", "originBoardId": board["id"]}, expect=201)
    fresh.post(f"/rest/agile/1.0/sprint/{new['id']}", {"state": "closed"}, expect=400)
    active = fresh.post(f"/rest/agile/1.0/sprint/{new['id']}", {"state": "active", "goal": "Go"})
    assert active["state"] == "active" and active["goal"] == "Go"
    other = fresh.post("/rest/agile/1.0/sprint", {"name": "Second", "originBoardId": board["id"]}, expect=201)
    fresh.post(f"/rest/agile/1.0/sprint/{other['id']}", {"state": "active"}, expect=400)  # one active a board
    closed = fresh.post(f"/rest/agile/1.0/sprint/{new['id']}", {"state": "closed"})
    assert closed["state"] == "closed" and closed["completeDate"]
    fresh.post(f"/rest/agile/1.0/sprint/{new['id']}", {"state": "active"}, expect=400)
    fresh.post("/rest/agile/1.0/sprint/99999", {"state": "active"}, expect=404)
