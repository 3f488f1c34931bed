"""The sandbox's Forge hosting over real HTTP: the deployed manifest, the Apps page and CDN, and resolver
calls (`/_forge/invoke`) that reach the remote with a Forge Invocation Token carrying Forge's context."""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import quote

import jwt
import pytest
import requests
from flask import Flask, jsonify, request

from keepstone.servers import serve_in_thread

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "manifest" / "manifest.yml"
CUSTOM_UI = ROOT / "manifest" / "build" / "panel" / "index.html"


@pytest.fixture
def forge(stack):
    """The stack with the app deployed to the sandbox from manifest/manifest.yml (Forge and Connect)."""
    if not CUSTOM_UI.exists():
        pytest.fail("the Forge Custom UI is not built: run `make install`")
    r = requests.post(
        stack.site.url + "/_sandbox/apps/install",
        json={"connector_url": stack.url, "forge_manifest": str(MANIFEST)},
        timeout=30,
    )
    assert r.ok and all(e["status"] < 300 for e in r.json()["events"]), r.text
    install = stack.site.server.app.extensions["atlassian"].apps["keepstone"]
    return stack, install, r.json()["forgeAppsPage"]


def _invoke(stack, install, path: str, method: str = "GET", body=None, **extra) -> requests.Response:
    call = {
        "installationId": install.installation_id,
        "moduleKey": "keepstone-admin",
        "path": path,
        "method": method,
        "body": body,
        **extra,
    }
    return requests.post(stack.site.url + "/_forge/invoke", json=call, timeout=30)


def test_a_resolver_call_reaches_the_connector_and_answers_as_the_bridge_expects(forge):
    stack, install, _page = forge
    r = _invoke(stack, install, "/forge/panel/status")
    assert r.status_code == 200
    answer = r.json()
    assert answer["success"] is True and answer["payload"]["status"] == 200
    assert answer["payload"]["body"]["cloud_id"] == stack.info()["cloudId"]
    assert answer["payload"]["headers"]["content-type"] == ["application/json"]
    refused = _invoke(stack, install, "/forge/panel/schedule", "PUT", {"days": [], "hour": 99}).json()
    assert refused["success"] is False and refused["error"]["status"] == 400
    assert set(refused["error"]["body"]["error"]["fields"]) == {"days", "hour"}


@pytest.fixture
def recorder():
    """A remote that records what Forge sends it and answers as told."""
    seen: list[dict] = []
    answers = {"/text": ("plain words", 200, "text/plain")}
    app = Flask("recorder")

    @app.route("/<path:path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def any_path(path: str):
        seen.append({"method": request.method, "path": request.path, "headers": dict(request.headers),
                     "json": request.get_json(silent=True)})  # fmt: skip
        if request.path in answers:
            text, status, mimetype = answers[request.path]
            return app.response_class(text, status=status, mimetype=mimetype)
        if request.path == "/missing":
            return jsonify({"error": "gone"}), 404
        return jsonify({"echo": request.path})

    with serve_in_thread(app) as server:
        yield server.url, seen


def test_the_fit_carries_forges_context_and_verifies_against_the_jwks(forge, recorder):
    stack, install, _page = forge
    url, seen = recorder
    install.forge["remote_url"] = url  # this environment's remote now points at the recorder
    r = _invoke(stack, install, "/forge/panel/backup", "POST", {"a": 1}, headers={"X-Custom": "yes"})
    assert r.json() == {
        "success": True,
        "payload": {
            "status": 200,
            "headers": r.json()["payload"]["headers"],
            "body": {"echo": "/forge/panel/backup"},
        },
    }
    call = seen[-1]
    assert (call["method"], call["path"], call["json"]) == ("POST", "/forge/panel/backup", {"a": 1})
    assert call["headers"]["X-Custom"] == "yes" and re.fullmatch(
        r"[0-9a-f]{32}", call["headers"]["X-B3-Traceid"]
    )
    token = call["headers"]["Authorization"].removeprefix("Bearer ")
    keys = jwt.PyJWKClient(stack.site.url + "/_sandbox/forge/jwks.json")
    claims = jwt.decode(
        token,
        keys.get_signing_key_from_jwt(token).key,
        algorithms=["RS256"],
        audience=install.forge_app_id,
        issuer="forge/invocation-token",
    )
    info = stack.info()
    context = claims["context"]
    assert context["cloudId"] == info["cloudId"] and context["siteUrl"] == stack.site.url
    assert context["moduleKey"] == "keepstone-admin" and context["extension"] == {"type": "jira:adminPage"}
    assert context["license"] == {"isActive": True} and context["localId"].startswith(
        "ari:cloud:ecosystem::extension/"
    )
    assert claims["app"]["installationId"] == install.installation_id
    assert claims["app"]["module"] == {"key": "keepstone-admin", "type": "jira:adminPage"}
    with stack.site.server.app.app_context():
        from sandbox.atlassian import _admin

        assert claims["principal"] == _admin().account_id
    assert 0 < claims["exp"] - claims["iat"] <= 300 and claims["exp"] > time.time()
    # Non-2xx answers come back as the bridge's error; an answer that is not JSON does not pass.
    missing = _invoke(stack, install, "/missing").json()
    assert missing == {
        "success": False,
        "error": {**missing["error"], "status": 404, "body": {"error": "gone"}},
    }
    text = _invoke(stack, install, "/text").json()
    assert text["success"] is False and text["error"]["status"] == 502


def test_invoke_refuses_what_forge_would(forge, recorder):
    stack, install, _page = forge
    url, seen = recorder
    install.forge["remote_url"] = url
    cross = requests.post(
        stack.site.url + "/_forge/invoke",
        json={
            "installationId": install.installation_id,
            "moduleKey": "keepstone-admin",
            "path": "/x",
            "method": "GET",
        },
        headers={"Origin": "http://127.0.0.1:1"},
        timeout=10,
    )
    assert cross.status_code == 403
    for path in ("https://elsewhere.example/x", "//elsewhere.example/x", "relative", None):
        assert _invoke(stack, install, path).json()["error"]["status"] == 400, path
    assert _invoke(stack, install, "/x", "TRACE").json()["error"]["status"] == 400
    assert (
        _invoke(stack, install, "/x", installationId="ari:cloud:ecosystem::installation/x").status_code == 404
    )
    assert _invoke(stack, install, "/x", moduleKey="another-module").status_code == 404
    assert seen == []  # none of them reached the remote


def test_the_apps_page_frames_the_custom_ui_sandboxed_and_the_cdn_serves_only_the_resource(forge):
    stack, _install, page_url = forge
    page = requests.get(page_url, timeout=10)
    assert page.status_code == 200
    frame = re.search(r"<iframe id='app-frame'[^>]*>", page.text).group(0)
    sandbox = re.search(r"sandbox='([^']*)'", frame).group(1).split()
    assert "allow-scripts" in sandbox and "allow-same-origin" not in sandbox and "allow-popups" not in sandbox
    src = re.search(r"src='([^']+)'", frame).group(1)
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    index = requests.get(stack.site.url + src, timeout=10)
    assert index.status_code == 200
    assert re.search(r"<head>\s*<script src=\"/_forge/bridge.js\"></script>", index.text)
    csp = index.headers["Content-Security-Policy"]
    assert (
        csp.startswith("default-src 'none'; script-src 'self'") and f"frame-ancestors {stack.site.url}" in csp
    )
    base = src.rsplit("/", 1)[0]
    assert requests.get(stack.site.url + base + "/panel.js", timeout=10).status_code == 200
    for bad in ("/..%2F..%2Fmanifest.yml", "/../../manifest.yml", "/nothing.js"):
        assert requests.get(stack.site.url + base + bad, timeout=10).status_code == 404, bad
    other_resource = base.rsplit("/", 1)[0] + "/other/index.html"
    assert requests.get(stack.site.url + other_resource, timeout=10).status_code == 404
    bridge = requests.get(stack.site.url + "/_forge/bridge.js", timeout=10).text
    assert f"const HOST = {quote(stack.site.url, safe=':/')!r}".replace("'", '"') in bridge
