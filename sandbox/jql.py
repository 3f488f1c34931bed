"""The JQL subset a backup and a restore use: parse, validate against the site, and evaluate.

Supported: `field op value` with = != > >= < <= ~ !~, `IN (...)`, `NOT IN (...)`, `IS [NOT] EMPTY`,
AND / OR / NOT / parentheses, `ORDER BY field [ASC|DESC], ...`. Fields: project, key/issuekey, id, updated,
created, issuetype/type, status, statusCategory, labels, parent, summary/text, assignee, reporter,
resolution, component, fixVersion, sprint. Dates: "yyyy-MM-dd[ HH:mm]" (also with /), or relative
-5d / -2h / -30m / -1w, interpreted in UTC. Errors raise `JqlError` with Jira's message.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sandbox import catalog
from sandbox.generate import issue_content
from sandbox.model import Issue, Site


class JqlError(ValueError):
    """A query Jira would answer with 400; the message is Jira's."""


TOKEN = re.compile(
    r"""\s*(?:(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<op>!=|>=|<=|!~|=|>|<|~|\(|\)|,)"""
    r"""|(?P<word>[A-Za-z0-9_.\-/:*@+]+))"""
)
KEYWORDS = {"and", "or", "not", "in", "is", "empty", "null", "order", "by", "asc", "desc"}
FIELD_ALIASES = {
    "issuekey": "key",
    "type": "issuetype",
    "issue": "key",
    "fixversion": "fixversion",
    "text": "summary",
}
KNOWN_FIELDS = {
    "project",
    "key",
    "id",
    "updated",
    "created",
    "issuetype",
    "status",
    "statuscategory",
    "labels",
    "parent",
    "summary",
    "assignee",
    "reporter",
    "resolution",
    "component",
    "fixversion",
    "sprint",
}
SORTABLE = {"key", "id", "created", "updated", "priority", "rank"}


@dataclass
class Token:
    kind: str  # string | op | word
    text: str

    @property
    def lower(self) -> str:
        return self.text.lower()


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise JqlError(
                f"Error in the JQL Query: The character '{text[pos:].strip()[0]}' is a reserved JQL "
                f"character. You must enclose it in a string or use the escape '\\u{ord(text[pos:].strip()[0]):04x}' "
                f"instead. (line 1, character {pos + 1})"
            )
        kind = m.lastgroup or "word"
        value = m.group(kind)
        if kind == "string":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        tokens.append(Token(kind, value))
        pos = m.end()
    return tokens


@dataclass
class Query:
    """A parsed query: a predicate (or None when it has no restriction) and its ordering."""

    where: Any  # nested tuples: ("and", a, b) | ("or", a, b) | ("not", a) | ("clause", field, op, values)
    order: list[tuple[str, bool]]  # (field, descending)

    @property
    def bounded(self) -> bool:
        return self.where is not None


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise JqlError(
                "Error in the JQL Query: Expecting either a value, list or function but got 'EOF'."
            )
        self.i += 1
        return token

    def expect_word(self, word: str) -> None:
        token = self.take()
        if token.lower != word:
            raise JqlError(f"Error in the JQL Query: Expecting '{word.upper()}' but got '{token.text}'.")

    def parse(self) -> Query:
        where = None
        token = self.peek()
        if token is not None and not (token.kind == "word" and token.lower == "order"):
            where = self.or_expr()
        order: list[tuple[str, bool]] = []
        token = self.peek()
        if token is not None:
            if token.lower != "order":
                raise JqlError(
                    f"Error in the JQL Query: Expecting either 'OR' or 'AND' but got '{token.text}'."
                )
            self.take()
            self.expect_word("by")
            while True:
                name = self.field_name(self.take())
                if name not in SORTABLE and name not in KNOWN_FIELDS:
                    raise JqlError(f"Field '{name}' does not exist or you do not have permission to view it.")
                desc = False
                nxt = self.peek()
                if nxt is not None and nxt.lower in ("asc", "desc"):
                    desc = self.take().lower == "desc"
                order.append((name, desc))
                nxt = self.peek()
                if nxt is None:
                    break
                if nxt.text != ",":
                    raise JqlError(f"Error in the JQL Query: Expecting ',' but got '{nxt.text}'.")
                self.take()
        return Query(where, order)

    def or_expr(self) -> Any:
        left = self.and_expr()
        while (t := self.peek()) is not None and t.kind == "word" and t.lower == "or":
            self.take()
            left = ("or", left, self.and_expr())
        return left

    def and_expr(self) -> Any:
        left = self.not_expr()
        while (t := self.peek()) is not None and t.kind == "word" and t.lower == "and":
            self.take()
            left = ("and", left, self.not_expr())
        return left

    def not_expr(self) -> Any:
        token = self.peek()
        if token is not None and token.kind == "word" and token.lower == "not":
            self.take()
            return ("not", self.not_expr())
        if token is not None and token.text == "(":
            self.take()
            inner = self.or_expr()
            closing = self.take()
            if closing.text != ")":
                raise JqlError(f"Error in the JQL Query: Expecting ')' but got '{closing.text}'.")
            return inner
        return self.clause()

    @staticmethod
    def field_name(token: Token) -> str:
        name = token.lower
        if name.startswith("cf[") or name.startswith("customfield_"):
            return name
        return FIELD_ALIASES.get(name, name)

    def clause(self) -> Any:
        field_token = self.take()
        if field_token.kind == "op" or (field_token.kind == "word" and field_token.lower in KEYWORDS):
            raise JqlError(f"Error in the JQL Query: Expecting a field name but got '{field_token.text}'.")
        name = self.field_name(field_token)
        if name not in KNOWN_FIELDS:
            raise JqlError(
                f"Field '{field_token.text}' does not exist or you do not have permission to view it."
            )
        op_token = self.take()
        op = op_token.lower
        if op == "not":
            self.expect_word("in")
            op = "not in"
        elif op == "is":
            nxt = self.take()
            if nxt.lower == "not":
                self.take_empty()
                return ("clause", name, "is not empty", [])
            if nxt.lower not in ("empty", "null"):
                raise JqlError(f"Error in the JQL Query: Expecting 'EMPTY' but got '{nxt.text}'.")
            return ("clause", name, "is empty", [])
        elif op_token.kind != "op" and op != "in":
            raise JqlError(f"Error in the JQL Query: Expecting operator but got '{op_token.text}'.")
        if op in ("in", "not in"):
            opening = self.take()
            if opening.text != "(":
                raise JqlError(f"Error in the JQL Query: Expecting '(' but got '{opening.text}'.")
            values = []
            while True:
                values.append(self.value())
                sep = self.take()
                if sep.text == ")":
                    break
                if sep.text != ",":
                    raise JqlError(f"Error in the JQL Query: Expecting ',' or ')' but got '{sep.text}'.")
            return ("clause", name, op, values)
        return ("clause", name, op, [self.value()])

    def take_empty(self) -> None:
        token = self.take()
        if token.lower not in ("empty", "null"):
            raise JqlError(f"Error in the JQL Query: Expecting 'EMPTY' but got '{token.text}'.")

    def value(self) -> str:
        token = self.take()
        if token.kind == "op":
            raise JqlError(
                f"Error in the JQL Query: Expecting either a value, list or function but got '{token.text}'."
            )
        nxt = self.peek()
        if token.kind == "word" and nxt is not None and nxt.text == "(":  # a function such as currentUser()
            self.take()
            closing = self.take()
            if closing.text != ")":
                raise JqlError("Error in the JQL Query: functions take no arguments here.")
            return token.text + "()"
        return token.text


def parse(text: str) -> Query:
    """Parse a JQL string; raise JqlError with Jira's message when it is malformed."""
    return _Parser(text).parse()


RELATIVE = re.compile(r"^([-+]?)(\d+)([wdhm])$")


def parse_time(value: str, now_ms: int | None = None) -> int:
    """Turn a JQL date value into epoch milliseconds (UTC)."""
    value = value.strip()
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    m = RELATIVE.match(value)
    if m:
        amount = (
            int(m.group(2)) * {"w": 604_800_000, "d": 86_400_000, "h": 3_600_000, "m": 60_000}[m.group(3)]
        )
        return now_ms - amount if m.group(1) != "+" else now_ms + amount
    if value.lower() in ("now()", "startofday()"):
        return now_ms
    for fmt in ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d"):
        try:
            return int(datetime.strptime(value, fmt).replace(tzinfo=UTC).timestamp() * 1000)
        except ValueError:
            continue
    raise JqlError(
        f"Date value '{value}' for field 'updated' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', "
        "'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'."
    )


def compile_query(site: Site, query: Query, account_id: str) -> Callable[[Issue], bool]:
    """Turn a parsed query into a predicate over issues, checking values against the site."""
    if query.where is None:
        return lambda issue: True
    return _compile(site, query.where, account_id)


def _compile(site: Site, node: Any, account_id: str) -> Callable[[Issue], bool]:
    kind = node[0]
    if kind == "and":
        a, b = _compile(site, node[1], account_id), _compile(site, node[2], account_id)
        return lambda i: a(i) and b(i)
    if kind == "or":
        a, b = _compile(site, node[1], account_id), _compile(site, node[2], account_id)
        return lambda i: a(i) or b(i)
    if kind == "not":
        a = _compile(site, node[1], account_id)
        return lambda i: not a(i)
    _, name, op, values = node
    return _clause(site, name, op, values, account_id)


def _clause(site: Site, name: str, op: str, values: list[str], account_id: str) -> Callable[[Issue], bool]:
    values = [account_id if v.lower() == "currentuser()" else v for v in values]
    if name in ("updated", "created"):
        if op in ("in", "not in", "~", "!~"):
            raise JqlError(f"The operator '{op.upper()}' is not supported by the '{name}' field.")
        if op in ("is empty", "is not empty"):
            return (lambda i: False) if op == "is empty" else (lambda i: True)
        limit = parse_time(values[0])
        attr = name
        compare = {
            "=": lambda x: x == limit,
            "!=": lambda x: x != limit,
            ">": lambda x: x > limit,
            ">=": lambda x: x >= limit,
            "<": lambda x: x < limit,
            "<=": lambda x: x <= limit,
        }[op]
        return lambda i: compare(getattr(i, attr))
    getter, normalise = _getter(site, name, values)
    wanted = {normalise(v) for v in values}
    if op in ("=", "in"):
        return lambda i: bool(getter(i) & wanted)
    if op in ("!=", "not in"):
        return lambda i: not (getter(i) & wanted)
    if op == "is empty":
        return lambda i: not getter(i)
    if op == "is not empty":
        return lambda i: bool(getter(i))
    if op in ("~", "!~"):
        words = [w.lower() for w in values[0].replace("*", "").split()]

        def contains(i: Issue) -> bool:
            text = " ".join(str(x) for x in getter(i)).lower()
            return all(w in text for w in words)

        return contains if op == "~" else (lambda i: not contains(i))
    if name in ("key", "id") and op in (">", ">=", "<", "<="):
        target = site.issue(values[0])
        if target is None:
            raise JqlError(f"An issue with key '{values[0]}' does not exist for field 'key'.")
        cmp = {
            ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b,
            "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b,
        }[op]
        return lambda i: i.project_id == target.project_id and cmp(i.num, target.num)
    raise JqlError(f"The operator '{op.upper()}' is not supported by the '{name}' field.")


def _getter(site: Site, name: str, values: list[str]) -> tuple[Callable[[Issue], set], Callable[[str], Any]]:
    fields = lambda i: issue_content(site, i)["fields"]  # noqa: E731
    if name == "project":
        ids = {}
        for v in values:
            p = site.project_by_key(v) or next(
                (p for p in site.projects.values() if not p.deleted and p.name.lower() == v.lower()), None
            )
            if p is None:
                raise JqlError(f"The value '{v}' does not exist for the field 'project'.")
            ids[v.lower()] = p.id
        return (lambda i: {i.project_id}), (lambda v: ids[v.lower()])
    if name in ("key", "id"):

        def resolve(v: str) -> int:
            issue = site.issue(v)
            if issue is None:
                if v.isdigit():
                    return -1
                raise JqlError(f"An issue with key '{v}' does not exist for field 'key'.")
            return issue.id

        return (lambda i: {i.id}), resolve
    if name == "parent":

        def resolve_parent(v: str) -> int:
            issue = site.issue(v)
            if issue is None:
                raise JqlError(f"An issue with key '{v}' does not exist for field 'parent'.")
            return issue.id

        return (lambda i: {i.parent_id} if i.parent_id else set()), resolve_parent
    if name == "issuetype":
        by_name = {t["name"].lower(): t["id"] for t in catalog.ISSUE_TYPES}
        return (lambda i: {i.type_id}), (lambda v: by_name.get(v.lower(), v))
    if name == "status":
        by_name = {s["name"].lower(): s["id"] for s in catalog.STATUSES}
        return (lambda i: {fields(i)["status"]}), (lambda v: by_name.get(v.lower(), v))
    if name == "statuscategory":
        return (
            lambda i: {
                catalog.STATUS_CATEGORIES[catalog.STATUS_BY_ID[fields(i)["status"]]["category"]][
                    "name"
                ].lower()
            },
            lambda v: v.lower(),
        )
    if name == "labels":
        return (lambda i: set(fields(i)["labels"])), (lambda v: v)
    if name == "summary":
        return (lambda i: {fields(i)["summary"]}), (lambda v: v)
    if name in ("assignee", "reporter"):
        return (lambda i: {fields(i)[name]} - {None}), (lambda v: v)
    if name == "resolution":
        by_name = {r["name"].lower(): r["id"] for r in catalog.RESOLUTIONS}
        return (lambda i: {fields(i)["resolution"] or "unresolved"}), (
            lambda v: by_name.get(v.lower(), v.lower())
        )
    if name == "component":

        def component_names(i: Issue) -> set:
            comps = {c["id"]: c["name"] for c in site.projects[i.project_id].components}
            return {comps.get(c, "").lower() for c in fields(i)["components"]} | {
                str(c) for c in fields(i)["components"]
            }

        return component_names, (lambda v: v.lower() if not v.isdigit() else v)
    if name == "fixversion":

        def version_names(i: Issue) -> set:
            vers = {v["id"]: v["name"] for v in site.projects[i.project_id].versions}
            return {vers.get(v, "").lower() for v in fields(i)["fixVersions"]} | {
                str(v) for v in fields(i)["fixVersions"]
            }

        return version_names, (lambda v: v.lower() if not v.isdigit() else v)
    if name == "sprint":
        return (lambda i: {str(s) for s in fields(i)["custom"].get("customfield_10020") or []}), (lambda v: v)
    raise JqlError(f"Field '{name}' does not exist or you do not have permission to view it.")


def project_scope(query: Query, site: Site) -> set[int] | None:
    """Return the project ids a query is limited to by a top-level AND of project clauses, if any."""

    def scope(node: Any) -> set[int] | None:
        if node is None:
            return None
        if node[0] == "and":
            a, b = scope(node[1]), scope(node[2])
            if a is None:
                return b
            return a if b is None else a & b
        if node[0] == "clause" and node[1] == "project" and node[2] in ("=", "in"):
            found = set()
            for v in node[3]:
                p = site.project_by_key(v) or next(
                    (p for p in site.projects.values() if not p.deleted and p.name.lower() == v.lower()), None
                )
                if p is not None:
                    found.add(p.id)
            return found
        return None

    return scope(query.where)


def sort_key(site: Site, order: list[tuple[str, bool]]) -> Callable[[Issue], Any] | None:
    """Return a sort function for ORDER BY (None keeps the natural key order)."""
    if not order:
        return None

    def key(issue: Issue) -> tuple:
        parts = []
        for name, desc in order:
            if name == "key":
                value: Any = (site.projects[issue.project_id].key, issue.num)
            elif name in ("created", "updated", "id"):
                value = getattr(issue, name)
            elif name == "project":
                value = site.projects[issue.project_id].key
            elif name == "priority":
                value = int(issue_content(site, issue)["fields"]["priority"] or 9)
            else:
                value = issue.id
            if desc:
                value = _Reverse(value)
            parts.append(value)
        return tuple(parts)

    return key


class _Reverse:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Reverse) -> bool:
        return self.value > other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reverse) and self.value == other.value
