"""Retention against an independent reference model (hypothesis), with DST in non-UTC zones.

The model below shares no code with backend.repository.retention: it buckets snapshots by strftime keys,
takes the newest snapshot of every bucket and keeps the N most recent of those; keep-within uses
dateutil's relativedelta.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.repository import Repository
from backend.repository.retention import Candidate, Duration, Policy, PolicyError, decide, forget
from backend.storage import PermanentError, open_storage
from backend.storage.local import LocalStorage

ZONES = ["Europe/Berlin", "America/Santiago", "Australia/Lord_Howe", "America/New_York", "UTC"]
FORMATS = {
    "hourly": "%Y-%m-%d %H",
    "daily": "%Y-%m-%d",
    "weekly": "%G-W%V",
    "monthly": "%Y-%m",
    "yearly": "%Y",
}
UNITS = {"h": "hours", "d": "days", "w": "weeks", "m": "months", "y": "years"}


def transitions(zone: str) -> list[datetime]:
    """Instants (UTC) where the zone's offset changes in 2024-2026, found by stepping an hour at a time."""
    tz = ZoneInfo(zone)
    out, t = [], datetime(2024, 1, 1, tzinfo=UTC)
    before = t.astimezone(tz).utcoffset()
    while t.year < 2027:
        t += timedelta(minutes=30)
        now = t.astimezone(tz).utcoffset()
        if now != before:
            out.append(t)
            before = now
    return out or [datetime(2025, 6, 1, tzinfo=UTC)]


TRANSITIONS = {zone: transitions(zone) for zone in ZONES}


def model_keep(policy: dict, items: list[tuple[str, datetime]], zone: str, marked: set[str]) -> set[str]:
    """The reference: bucket by period key, newest of each bucket, the N most recent buckets."""
    tz = ZoneInfo(zone)
    ordered = sorted(items, key=lambda it: (it[1].astimezone(UTC), it[0]))
    keep: set[str] = set()
    if policy["scheme"] == "unlimited":
        return {i for i, _ in items}
    if policy.get("keep_last"):
        keep.update(i for i, _ in ordered[::-1][: policy["keep_last"]])
    for rule, fmt in FORMATS.items():
        n = policy.get(f"keep_{rule}", 0)
        if not n:
            continue
        buckets: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
        for i, t in items:
            buckets[t.astimezone(tz).strftime(fmt)].append((t.astimezone(UTC), i))
        heads = sorted((max(b) for b in buckets.values()), reverse=True)
        keep.update(i for _, i in heads[:n])
    if policy.get("keep_within"):
        amounts: dict[str, int] = defaultdict(int)
        number = ""
        for ch in policy["keep_within"]:
            if ch.isdigit():
                number += ch
            else:
                amounts[UNITS[ch]] += int(number)
                number = ""
        newest_local = ordered[-1][1].astimezone(tz)
        cutoff = newest_local - relativedelta(
            years=amounts["years"], months=amounts["months"], days=amounts["days"] + 7 * amounts["weeks"]
        )
        cutoff_utc = cutoff.astimezone(UTC) - timedelta(hours=amounts["hours"])
        keep.update(i for i, t in items if t.astimezone(UTC) > cutoff_utc)
    keep |= marked & {i for i, _ in items}
    keep.add(ordered[-1][0])
    return keep


@st.composite
def histories(draw) -> tuple[str, list[tuple[str, datetime]]]:
    zone = draw(st.sampled_from(ZONES))
    near = TRANSITIONS[zone]
    anywhere = st.datetimes(datetime(2024, 1, 1), datetime(2026, 12, 31), timezones=st.just(UTC))
    around = st.builds(
        lambda base, minutes: base + timedelta(minutes=minutes),
        st.sampled_from(near),
        st.integers(-26 * 60, 26 * 60),
    )
    times = draw(st.lists(st.one_of(anywhere, around), min_size=1, max_size=40))
    return zone, [(f"{n:04d}" + uuid.UUID(int=n).hex[:4], t) for n, t in enumerate(times)]


@st.composite
def policies(draw) -> dict:
    scheme = draw(st.sampled_from(["gfs", "custom", "custom", "unlimited"]))
    if scheme == "unlimited":
        return {"scheme": "unlimited"}
    rules = ["keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly"]
    if scheme == "custom":
        rules.append("keep_last")
    out: dict = {"scheme": scheme}
    for rule in rules:
        n = draw(st.integers(0, 6))
        if n:
            out[rule] = n
    if scheme == "custom" and draw(st.booleans()):
        out["keep_within"] = draw(st.sampled_from(["12h", "1d", "3d", "2w", "1m", "1y", "1y2m3d4h", "30d"]))
    if len(out) == 1:
        out["keep_daily"] = 1
    return out


def candidates(items, marked=frozenset(), project="PLAT") -> list[Candidate]:
    return [Candidate(i, project, t, i in marked) for i, t in items]


@settings(max_examples=400, deadline=None)
@given(histories(), policies(), st.data())
def test_the_kept_set_is_exactly_the_models(history, policy, data):
    zone, items = history
    marked = set(data.draw(st.lists(st.sampled_from([i for i, _ in items]), max_size=3)))
    verdicts = decide(Policy.from_dict(policy), candidates(items, marked), ZoneInfo(zone))
    kept = {v.id for v in verdicts if v.keep}
    assert kept == model_keep(policy, items, zone, marked)
    assert all(bool(v.reasons) == v.keep for v in verdicts)  # every kept one says which rule kept it


@settings(max_examples=200, deadline=None)
@given(histories(), policies())
def test_applying_the_policy_to_what_it_kept_keeps_it_all(history, policy):
    zone, items = history
    tz, p = ZoneInfo(zone), Policy.from_dict(policy)
    kept = {v.id for v in decide(p, candidates(items), tz) if v.keep}
    again = decide(p, candidates([it for it in items if it[0] in kept]), tz)
    assert all(v.keep for v in again)


@settings(max_examples=200, deadline=None)
@given(st.lists(histories(), min_size=1, max_size=3), policies())
def test_no_project_is_ever_emptied(histories_, policy):
    every = []
    for n, (_, items) in enumerate(histories_):
        every += candidates(items, project=f"P{n}")
    verdicts = decide(Policy.from_dict(policy), every, ZoneInfo("Europe/Berlin"))
    for n in range(len(histories_)):
        assert any(v.keep for v in verdicts if v.project == f"P{n}")


@pytest.fixture(scope="module")
def memory_repo() -> Repository:
    return Repository.init(open_storage("memory://"), "retention-test", pack_size=1 << 16)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(histories(), policies())
def test_forget_in_a_repository_removes_exactly_the_rest_and_twice_changes_nothing(
    memory_repo, history, policy
):
    zone, items = history
    # the repository stores milliseconds, and breaks ties of equal times by snapshot id: use distinct seconds
    items = list({t.replace(microsecond=0): (i, t.replace(microsecond=0)) for i, t in items}.values())
    project = "P" + uuid.uuid4().hex[:8].upper()
    ids = {}
    for i, t in items:
        w = memory_repo.start_snapshot(project, "https://acme.example", None, {"n": i}, time=t)
        w.add_json("issues/X-1", {"i": i}, "issue")
        ids[w.commit()] = i
    mine = lambda s: s.project == project  # noqa: E731
    p, tz = Policy.from_dict(policy), ZoneInfo(zone)
    first = forget(memory_repo, p, tz, include=mine)
    left = {s.id for s in memory_repo.snapshots(project)}
    assert left == {v.id for v in first.kept} and left
    assert {ids[s] for s in left} == model_keep(policy, items, zone, set())
    second = forget(memory_repo, p, tz, include=mine)
    assert second.forgotten == [] and {s.id for s in memory_repo.snapshots(project)} == left


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_berlin_dst_example_from_the_docs():
    """The worked example of docs/retention.md, row by row."""
    rows = [
        ("a", "2026-03-28T23:30:00+01:00"),  # Sat 28 Mar, CET
        ("b", "2026-03-29T01:30:00+01:00"),  # Sun 29 Mar 01:30 CET
        ("c", "2026-03-29T03:30:00+02:00"),  # Sun 29 Mar 03:30 CEST (02:00-03:00 did not exist)
        ("d", "2026-03-30T02:00:00+02:00"),  # Mon 30 Mar (a new ISO week)
        ("e", "2026-10-25T02:30:00+02:00"),  # Sun 25 Oct 02:30 CEST, first pass
        ("f", "2026-10-25T02:30:00+01:00"),  # Sun 25 Oct 02:30 CET, the same wall time an hour later
        ("g", "2026-10-26T00:30:00+01:00"),  # Mon 26 Oct
    ]
    items = [(i, at(t)) for i, t in rows]
    tz = ZoneInfo("Europe/Berlin")
    got = {
        v.id: v.reasons
        for v in decide(
            Policy.from_dict({"scheme": "custom", "keep_daily": 4, "keep_weekly": 3, "keep_hourly": 2}),
            candidates(items),
            tz,
        )
    }
    assert got == {
        "g": ["hourly", "daily", "weekly"],
        "f": ["hourly", "daily", "weekly"],  # e and f share the hour 02:00-03:00 of 25 Oct: f is newer
        "e": [],
        "d": ["daily", "weekly"],
        "c": ["daily"],  # Sunday 29 Mar: its newest
        "b": [],
        "a": [],  # Saturday 28 Mar would be a fifth day, and week 13 a fourth week
    }
    monthly = decide(Policy.from_dict({"scheme": "gfs", "keep_monthly": 2}), candidates(items), tz)
    assert [v.id for v in monthly if v.keep] == ["g", "d"]


def test_keep_within_counts_back_from_the_newest_snapshot_not_from_now():
    items = [("new", at("2020-05-31T12:00:00+00:00")), ("old", at("2020-04-30T12:00:00+00:00"))]
    got = decide(
        Policy.from_dict({"scheme": "custom", "keep_within": "1m"}), candidates(items), ZoneInfo("UTC")
    )
    # 31 May minus a month is 30 April (clamped), 12:00: not strictly after, so "old" goes
    assert [v.id for v in got if v.keep] == ["new"]
    got = decide(
        Policy.from_dict({"scheme": "custom", "keep_within": "1m1h"}), candidates(items), ZoneInfo("UTC")
    )
    assert [v.id for v in got if v.keep] == ["new", "old"]


def test_archives_and_marks_are_kept_and_say_so():
    items = [("a", at("2026-01-01T00:00:00+00:00")), ("b", at("2026-01-02T00:00:00+00:00"))]
    policy = Policy.from_dict({"scheme": "custom", "keep_last": 1})
    got = {v.id: v.reasons for v in decide(policy, candidates(items, {"a"}), UTC, archived=["PLAT"])}
    assert got == {"b": ["last", "archive"], "a": ["marked keep"]}


LEGACY = {"scheme": "gfs", "daily": 7, "weekly": 4, "monthly": 12, "yearly": 3}


def test_stored_legacy_rotation_dicts_still_work():
    p = Policy.from_dict(LEGACY)
    assert (p.daily, p.weekly, p.monthly, p.yearly) == (7, 4, 12, 3)
    assert p.to_dict() == {
        "scheme": "gfs",
        "keep_daily": 7,
        "keep_weekly": 4,
        "keep_monthly": 12,
        "keep_yearly": 3,
    }
    assert Policy.from_dict(p.to_dict()) == p
    assert Policy.from_dict({"scheme": "gfs"}).to_dict() == p.to_dict()  # gfs alone: the default counts


BAD = [
    ({"scheme": "gfs", "keep_daily": -1}, "keep_daily"),
    ({"scheme": "gfs", "daily": -3}, "daily"),
    ({"scheme": "gfs", "keep_daily": "7"}, "keep_daily"),
    ({"scheme": "gfs", "keep_daily": True}, "keep_daily"),
    ({"scheme": "gfs", "keep_daily": 7, "daily": 7}, "daily"),
    ({"scheme": "gfs", "keep_last": 3}, "keep_last"),
    ({"scheme": "gfs", "keep_daily": 0}, "keep_daily"),
    ({"scheme": "custom"}, "keep_last"),
    ({"scheme": "custom", "keep_daily": 0}, "keep_last"),
    ({"scheme": "custom", "keep_within": "30 days"}, "keep_within"),
    ({"scheme": "custom", "keep_within": "0d"}, "keep_within"),
    ({"scheme": "custom", "keep_within": "-1d"}, "keep_within"),
    ({"scheme": "custom", "keep_within": 30}, "keep_within"),
    ({"scheme": "custom", "keep_forever": 1}, "keep_forever"),
    ({"scheme": "unlimited", "keep_daily": 3}, "keep_daily"),
    ({"scheme": "weekly"}, "scheme"),
    ({"keep_daily": 3}, "scheme"),
]


@pytest.mark.parametrize("raw, field", BAD)
def test_bad_policies_name_their_field(raw, field):
    with pytest.raises(PolicyError) as e:
        Policy.from_dict(raw)
    assert e.value.field == field


def test_durations():
    assert Duration.parse("1y6m2w3d12h") == Duration(1, 6, 17, 12, "1y6m2w3d12h")
    berlin = ZoneInfo("Europe/Berlin")
    # one day before 29 Mar 12:00 CEST is 28 Mar 12:00 CET on the wall clock: 23 hours of elapsed time
    moment = at("2026-03-29T12:00:00+02:00")
    assert moment - Duration.parse("1d").before(moment, berlin) == timedelta(hours=23)
    assert moment - Duration.parse("24h").before(moment, berlin) == timedelta(hours=24)


class FailingRemovals(LocalStorage):
    """A real local storage whose snapshot removals fail after the first `allowed` (a storage going away)."""

    allowed = 1

    def remove(self, kind: str, name: str) -> None:
        if kind == "snapshots":
            if self.allowed <= 0:
                raise PermanentError("the storage went away")
            self.allowed -= 1
        super().remove(kind, name)


def test_a_forget_stopped_half_way_leaves_a_readable_repository(tmp_path):
    storage = FailingRemovals(tmp_path / "repo")
    repo = Repository.init(storage, "half-way", pack_size=1 << 16)
    for day in range(1, 6):
        w = repo.start_snapshot(
            "PLAT", "https://acme.example", None, {}, time=at(f"2026-05-0{day}T12:00:00+00:00")
        )
        w.add_json("issues/PLAT-1", {"day": day}, "issue")
        w.commit()
    policy = Policy.from_dict({"scheme": "custom", "keep_last": 2})
    with pytest.raises(PermanentError):
        forget(repo, policy, UTC)
    reopened = Repository.open(LocalStorage(tmp_path / "repo"), "half-way")
    assert len(reopened.snapshots()) == 4 and reopened.check(read_data=True).ok
    assert list(reopened.storage.list("locks")) == []  # the lock was released on the way out
    done = forget(reopened, policy, UTC)
    assert len(done.removed) == 2 and [s.time[:10] for s in reopened.snapshots()] == [
        "2026-05-04",
        "2026-05-05",
    ]
