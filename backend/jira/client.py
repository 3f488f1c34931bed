"""The one Jira HTTP client: every request goes through `JiraClient.request`, which paces, retries and signs."""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from backend.jira.budget import RateBudget, budget_for
from backend.jira.errors import JiraAuthError, JiraBadRequest, JiraError, JiraNotFound, JiraUnavailable
from keepstone.backoff import full_jitter
from keepstone.jsonio import loads

log = logging.getLogger(__name__)
RETRY_STATUSES = {429, 500, 502, 503, 504}


@dataclass(frozen=True)
class JiraCredentials:
    """Where the site is and how to sign in: Basic email:API token (or a Bearer PAT on Data Center)."""

    site_url: str
    email: str = ""
    api_token: str = field(default="", repr=False)
    bearer: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "site_url", self.site_url.rstrip("/"))


@dataclass
class ClientStats:
    """What a client has done so far (thread-safe counters)."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    bytes_in: int = 0
    by_endpoint: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, endpoint: str, size: int) -> None:
        with self.lock:
            self.requests += 1
            self.bytes_in += size
            self.by_endpoint[endpoint] = self.by_endpoint.get(endpoint, 0) + 1

    def add_bytes(self, size: int) -> None:
        with self.lock:
            self.bytes_in += size


def _retry_after(response: requests.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _messages(response: requests.Response) -> tuple[list[str], dict[str, str]]:
    try:
        body = response.json()
    except ValueError:
        # Not Jira's JSON (a proxy's or a web server's page): its text says little, its type says more.
        kind = response.headers.get("Content-Type", "").split(";")[0].strip()
        if not response.text or kind == "text/html":
            return [f"an answer that is not Jira's ({kind or 'no content type'})"], {}
        return [" ".join(response.text[:200].split())], {}
    if not isinstance(body, dict):
        return [], {}
    messages = [str(m) for m in body.get("errorMessages") or []]
    errors = body.get("errors")
    if isinstance(errors, list):  # POST /issue/bulk: one entry per refused element, numbered from 0
        fields: dict[str, str] = {}
        for entry in errors:
            if not isinstance(entry, dict):
                continue
            n, element = entry.get("failedElementNumber"), entry.get("elementErrors") or {}
            messages += [f"issue {n}: {m}" for m in element.get("errorMessages") or []]
            fields |= {f"{n}.{k}": str(v) for k, v in (element.get("errors") or {}).items()}
        return messages, fields
    return messages, {str(k): str(v) for k, v in (errors or {}).items()} if isinstance(errors, dict) else {}


class JiraClient:
    """A pooled, paced, retrying client for one Jira site, safe to share between threads."""

    def __init__(
        self,
        credentials: JiraCredentials,
        budget: RateBudget | None = None,
        pool_size: int = 16,
        max_attempts: int = 8,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        timeout: tuple[float, float] = (5.0, 60.0),
        sleep=time.sleep,
    ) -> None:
        self.credentials = credentials
        # The embedded default is a budget of this client's own; KEEPSTONE_RATE_BUDGET_URL shares one per
        # site and credential between every process (the key hashes the credential, never stores it).
        self.budget = budget or budget_for(
            credentials.site_url, credentials.email or ("bearer " + credentials.api_token)
        )
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.timeout = timeout
        self.sleep = sleep
        self.stats = ClientStats()
        self.session = requests.Session()
        # urllib3 retries only failed connections (nothing was sent); status retries are ours, because they
        # must pause the whole site's budget, not one thread.
        connect_retry = Retry(
            total=None,
            connect=3,
            read=0,
            status=0,
            other=0,
            backoff_factor=0.2,
            allowed_methods=None,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=connect_retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        if credentials.bearer:
            self.session.headers["Authorization"] = f"Bearer {credentials.api_token}"
        else:
            # UTF-8 (RFC 7617), not requests' Latin-1: a non-Latin-1 email or token is a refusal, not a crash.
            self.session.auth = (credentials.email.encode(), credentials.api_token.encode())
        self.session.headers.update({"Accept": "application/json", "User-Agent": "keepstone/0.1"})
        # The environment's proxy (HTTPS_PROXY, NO_PROXY) and CA bundle settings, read once for the site:
        # with trust_env requests reads them, and ~/.netrc, again on every request (a few percent of a
        # worker's CPU in `bench scale`).
        self.session.proxies.update(requests.utils.get_environ_proxies(credentials.site_url))
        if bundle := os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE"):
            self.session.verify = bundle
        self.session.trust_env = False

    # --- the one place that sends -----------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        files: Any = None,
        headers: dict[str, str] | None = None,
        stream: bool = False,
        allow_redirects: bool = True,
        attempts: int | None = None,
        broken_after: int | None = None,
    ) -> requests.Response:
        """Send one request with pacing and retries; return the response or raise a JiraError.

        `attempts` bounds every kind of retry; `broken_after` bounds only answers of 500 (a resource
        Jira fails to read, such as a damaged media file, stays broken), while 429, 502, 503 and 504
        (Jira busy or a proxy in between) are ridden out up to `attempts`.
        """
        url = path if path.startswith("http") else self.credentials.site_url + path
        endpoint = f"{method} {path.split('?')[0]}"
        max_attempts = attempts or self.max_attempts
        attempt = 0
        errors_500 = 0
        while True:
            attempt += 1
            ticket = self.budget.acquire()
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    data=data,
                    files=files,
                    headers=headers,
                    stream=stream,
                    timeout=self.timeout,
                    allow_redirects=allow_redirects,
                )
            except requests.RequestException as e:
                if attempt >= max_attempts:
                    raise JiraUnavailable(
                        f"Jira at {self.credentials.site_url} cannot be reached: {_reason(e)}"
                    ) from e
                self._backoff(attempt, None)
                continue
            size = 0 if stream else len(response.content)
            self.stats.count(endpoint, size)
            if response.status_code not in RETRY_STATUSES:
                self.budget.observe(
                    ticket,
                    _int(response.headers.get("X-RateLimit-Remaining")),
                    response.headers.get("X-RateLimit-NearLimit", "").lower() == "true",
                    _int(response.headers.get("X-RateLimit-Limit")),
                )
                if response.status_code >= 400:
                    self._raise(response, method, path)
                return response
            retry_after = _retry_after(response)
            if response.status_code == 429:
                with self.stats.lock:
                    self.stats.throttled += 1
                self.budget.throttled(retry_after)
            errors_500 += response.status_code == 500
            if attempt >= max_attempts or (broken_after is not None and errors_500 >= broken_after):
                messages, _ = _messages(response)
                raise JiraUnavailable(
                    f"Jira kept answering {response.status_code} to {method} {path} after {attempt} attempts",
                    response.status_code,
                    messages,
                )
            response.close()
            with self.stats.lock:
                self.stats.retries += 1
            log.info(
                "jira retry",
                extra={
                    "status": response.status_code,
                    "endpoint": endpoint,
                    "attempt": attempt,
                    "retry_after": retry_after,
                },
            )
            if response.status_code == 429:
                continue  # the budget's pause already waits exactly Retry-After (or paces us down)
            self._backoff(attempt, retry_after)

    def _backoff(self, attempt: int, retry_after: float | None) -> None:
        if retry_after is not None:
            self.sleep(retry_after)  # Jira said how long: wait exactly that
            return
        # Full jitter exponential backoff.
        self.sleep(full_jitter(attempt, self.backoff_base, self.backoff_cap))

    @staticmethod
    def _raise(response: requests.Response, method: str, path: str) -> None:
        messages, errors = _messages(response)
        detail = "; ".join(messages + [f"{k}: {v}" for k, v in errors.items()]) or response.reason
        status = response.status_code
        if status in (401, 403):
            raise JiraAuthError(
                f"Jira refused {method} {path} ({status}): {detail}", status, messages, errors
            )
        if status == 404:
            raise JiraNotFound(f"Not found: {method} {path}: {detail}", status, messages, errors)
        raise JiraBadRequest(f"Jira refused {method} {path} ({status}): {detail}", status, messages, errors)

    # --- conveniences -----------------------------------------------------------------------------

    def get_json(self, path: str, **params: Any) -> Any:
        return loads(
            self.request("GET", path, params={k: v for k, v in params.items() if v is not None}).content
        )

    def post_json(self, path: str, body: Any) -> Any:
        response = self.request("POST", path, json=body)
        return loads(response.content) if response.content else None

    def myself(self, attempts: int | None = None) -> dict[str, Any]:
        """Check the credentials: who they sign in as (`attempts` bounds the wait on a site that is down)."""
        return self.request("GET", "/rest/api/3/myself", attempts=attempts).json()

    def projects(self) -> list[dict[str, Any]]:
        """Every project the account can browse (all pages of /project/search)."""
        out, start = [], 0
        while True:
            page = self.get_json(
                "/rest/api/3/project/search",
                startAt=start,
                maxResults=100,
                expand="description,lead,issueTypes,url,insight",
                status="live,archived",
            )
            values = page.get("values") or []
            out.extend(values)
            if page.get("isLast", True) or not values:
                return out
            start += len(values)

    def all_users(self) -> list[dict[str, Any]]:
        """Every user of the site (GET /rest/api/3/users/search pages of 1000, until a short page)."""
        users: list[dict[str, Any]] = []
        while True:
            page = self.get_json("/rest/api/3/users/search", startAt=len(users), maxResults=1000)
            users.extend(page)
            if len(page) < 1000:
                return users

    def search_jql(
        self, jql: str, fields: list[str], page_size: int = 5000, expand: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield every issue a query selects, following nextPageToken; a repeated or empty token ends it."""
        seen: set[str] = set()
        token: str | None = None
        while True:
            body: dict[str, Any] = {"jql": jql, "fields": fields, "maxResults": page_size}
            if expand:
                body["expand"] = expand
            if token:
                body["nextPageToken"] = token
            page = self.post_json("/rest/api/3/search/jql", body)
            issues = page.get("issues") or []
            yield from issues
            token = page.get("nextPageToken")
            if not token or not issues or token in seen:
                return
            seen.add(token)

    def bulkfetch(
        self,
        ids: list[str],
        fields: list[str] | None = None,
        expand: list[str] | None = None,
        properties: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Fetch up to 100 issues in one call."""
        if not ids:
            return []
        if len(ids) > 100:
            raise ValueError("bulkfetch takes at most 100 issues")
        body: dict[str, Any] = {"issueIdsOrKeys": ids, "fields": fields or ["*all"]}
        if expand:
            body["expand"] = expand
        if properties:
            body["properties"] = properties
        return self.post_json("/rest/api/3/issue/bulkfetch", body).get("issues") or []

    def paged(self, path: str, key: str, page_size: int = 100, start_at: int = 0) -> list[dict[str, Any]]:
        """Read every item of a startAt/maxResults/total page (comments, worklogs, changelog)."""
        out: list[dict[str, Any]] = []
        start = start_at
        while True:
            page = self.get_json(path, startAt=start, maxResults=page_size)
            items = page.get(key) or []
            out.extend(items)
            start += len(items)
            total = page.get("total")
            if not items or page.get("isLast") or (total is not None and start >= total):
                return out

    def download(self, attachment_id: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Stream an attachment's bytes (no redirect hop); raise JiraError on failure, IOError if cut short."""
        # A broken media file stays broken: three answers of 500, not eight, before it is reported.
        response = self.request(
            "GET",
            f"/rest/api/3/attachment/content/{attachment_id}",
            params={"redirect": "false"},
            stream=True,
            broken_after=3,
        )
        expected = _int(response.headers.get("Content-Length"))
        received = 0
        try:
            for chunk in response.iter_content(chunk_size):
                received += len(chunk)
                yield chunk
        except requests.RequestException as e:
            got, announced = _broken_at(e, received, expected)
            of = f" of {announced}" if announced is not None else ""
            raise OSError(
                f"attachment {attachment_id}: the connection broke after {got}{of} bytes ({_reason(e)})"
            ) from e
        finally:
            response.close()
            self.stats.add_bytes(received)
        if expected is not None and received != expected:
            raise OSError(f"attachment {attachment_id}: got {received} of {expected} bytes")

    def close(self) -> None:
        self.session.close()


def _reason(error: requests.RequestException) -> str:
    """The root of a failed connection in a few words ("Connection refused"), not urllib3's whole chain."""
    if isinstance(error, requests.Timeout):
        return "no answer before the time-out"
    found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(error))
    return found.group(1).strip() if found else f"{type(error).__name__}: {str(error)[:160]}"


def _broken_at(error: BaseException, delivered: int, expected: int | None) -> tuple[int, int | None]:
    """How many bytes really arrived before a download broke: the chunks delivered plus what the failed
    chunk had read (urllib3/http.client's IncompleteRead, somewhere in the exception's chain)."""
    seen: set[int] = set()
    todo: list[object] = [error]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        partial = getattr(e, "partial", None)
        if type(e).__name__ == "IncompleteRead" and partial is not None:
            read = partial if isinstance(partial, int) else len(partial)
            return delivered + read, expected
        if isinstance(e, BaseException):
            todo.extend(a for a in e.args if isinstance(a, BaseException))
            todo.extend(x for x in (e.__cause__, e.__context__) if x is not None)
    return delivered, expected


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


__all__ = ["JiraClient", "JiraCredentials", "JiraError"]
