"""The canonical request and qsh match Atlassian's published vectors and Atlassian's own npm atlassian-jwt."""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from connector.qsh import canonical_request, parse_query, qsh, qsh_candidates


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/and/more/", "foo=bah", "GET&/and/more&foo=bah"),
        ("GET", "/and/more", "foo=humbug&foo=bah", "GET&/and/more&foo=bah,humbug"),
        ("GET", "/x", "foo=bah+bah", "GET&/x&foo=bah%20bah"),
        ("GET", "/some/path&a=b", "x=y", "GET&/some/path%26a=b&x=y"),
        ("GET", "/x", "a=*~!'()", "GET&/x&a=%2A~%21%27%28%29"),
        ("post", "/x", "b=2&a=1&jwt=abc", "POST&/x&a=1&b=2"),
        ("GET", "", "", "GET&/&"),
    ],
)
def test_canonical_request_matches_vectors(method, path, query, expected):
    assert canonical_request(method, path, query) == expected


def test_qsh_of_myself_matches_the_published_hash():
    assert (
        qsh("GET", "/rest/api/3/myself") == "c790e863cecddbf1369d5e058d5f71d9d19741a497a6e4681351909109759513"
    )


def test_base_path_of_the_app_is_stripped():
    assert canonical_request("GET", "/app/panel", "", base_path="/app") == "GET&/panel&"


# --- against Atlassian's own npm atlassian-jwt ---------------------------------------------------------

NODE_SCRIPT = Path(__file__).with_name("atlassian_qsh.js")
NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules" / "atlassian-jwt"

# Raw request targets as they go on the wire (already percent-encoded where a client must encode).
TRICKY = {
    "spaces": "/panel/api/runs/a%20b?q=x%20y",
    "plus": "/panel/api/runs/a+b?q=a+b&r=a%2Bb",
    "encoded slash in the path": "/panel/api/runs/a%2Fb?x=1",
    "ampersand in the path": "/panel/api/runs/a&b=c?x=1",
    "non-ASCII key and value": "/panel/api/runs/r?%C3%A9t%C3%A9=%E2%82%AC&z=1",
    "non-ASCII path": "/panel/api/runs/%E2%82%AC%C3%A9?x=1",
    "repeated keys": "/panel/api/runs/r?b=2&a=3&a=1&a=2&a=10",
    "repeated non-BMP values": "/panel/api/runs/r?x=%F0%9F%98%80&x=%EF%BF%BF&x=a",
    "empty values": "/panel/api/runs/r?empty=&flag&x=",
    "empty key and empty piece": "/panel/api/runs/r?a=1&&b=2&=x",
    "jwt param present": "/panel/api/runs/r?x=1&jwt=PLACEHOLDER",
    "trailing slash": "/panel/api/runs/r/?x=1",
    "star and tilde": "/panel/api/runs/r?star=*&tilde=~&enc=%2A%7E",
    "sub-delims in values": "/panel/api/runs/r?x=!'()&y=%3B,:@",
    "keys the references order differently": "/panel/api/runs/r?a.b=1&a%2Fb=2&A=3&%C3%A9=4&z=5",
    "semicolon and a bad escape": "/panel/api/runs/r?k=v;w&x=%zz",
    "upper and lower case hex": "/panel/api/runs/%c3%a9?k=%c3%a9",
}


def _node(requests_: list[dict]) -> list[dict]:
    if shutil.which("node") is None:
        pytest.skip("node is not installed (needed to run Atlassian's npm atlassian-jwt)")
    if not NODE_MODULES.is_dir():
        pytest.skip("node_modules/atlassian-jwt is missing: run `npm ci` (make install does)")
    done = subprocess.run(
        ["node", str(NODE_SCRIPT)], input=json.dumps(requests_), capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def reference() -> dict[str, dict]:
    """Atlassian's canonical request and qsh for every tricky URL, GET and POST."""
    cases = [(name, method) for name in TRICKY for method in ("GET", "post")]
    answers = _node([{"method": m, "url": TRICKY[n]} for n, m in cases])
    return dict(zip(cases, answers, strict=True))


@pytest.mark.parametrize("method", ["GET", "post"])
@pytest.mark.parametrize("name", sorted(TRICKY))
def test_canonical_request_matches_atlassian_jwt(reference, name, method):
    path, _, query = TRICKY[name].partition("?")
    theirs = reference[(name, method)]
    # The npm package orders keys by their decoded form; with that order ours is the same string.
    assert canonical_request(method, path, query, key_order="decoded") == theirs["canonical"]
    assert theirs["qsh"] in qsh_candidates(method, path, query)
    # Java's order (by encoded key) differs only when a key has a character that must be encoded.
    keys = parse_query(query)
    if all(quote(k, safe="~") == k for k in keys):
        assert canonical_request(method, path, query) == theirs["canonical"]
        assert qsh(method, TRICKY[name]) == theirs["qsh"]


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_tokens_minted_by_atlassian_jwt_are_accepted_for_their_url_only(installed, name):
    """Over real HTTP: a token signed by atlassian-jwt for a tricky URL passes the connector's qsh check
    (the backend then answers 404 for the made-up run), and the same token on a changed URL is refused."""
    info = installed.info()
    now = int(time.time())
    claims = {"iss": info["clientKey"], "sub": "5b10admin", "iat": now, "exp": now + 120}
    url = TRICKY[name]
    changed = url.replace("?", "?zz=1&", 1)
    minted = _node(
        [
            {"method": "GET", "url": url, "secret": info["sharedSecret"], "claims": claims},
            {
                "method": "GET",
                "url": url.replace("/runs/", "/runs/x", 1),
                "secret": info["sharedSecret"],
                "claims": claims,
            },
        ]
    )
    token, foreign = minted[0]["token"], minted[1]["token"]
    assert _raw_get(installed, url, token).status == 404
    assert _raw_get(installed, changed, token).status == 401
    assert _raw_get(installed, url, foreign).status == 401


def _raw_get(stack, target: str, token: str) -> http.client.HTTPResponse:
    """GET the exact request target (no client re-encoding), the token in the header or the jwt param."""
    headers = {"Authorization": f"JWT {token}"}
    if "jwt=PLACEHOLDER" in target:
        target, headers = target.replace("jwt=PLACEHOLDER", f"jwt={token}"), {}
    conn = http.client.HTTPConnection("127.0.0.1", stack.connector.port, timeout=10)
    try:
        conn.request("GET", target, headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp
    finally:
        conn.close()
