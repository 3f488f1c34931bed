"""Forge's hosting of a Custom UI, as the sandbox plays it: deploy, the Apps page, the CDN, resolver calls.

- `deploy(manifest_path, remote_url)`: what `forge deploy` hands Atlassian, read from a manifest.yml:
  the app id, the admin page module, its Custom UI resource folder, its remote resolver endpoint and
  the lifecycle trigger's route; the remote's baseUrl is the given connector URL (the sandbox's
  stand-in for the environment's remote URL).
- `GET /jira/settings/apps/<app uuid>/<environment id>`: the Forge admin page as Jira shows it: Jira's
  chrome around the Custom UI in a sandboxed iframe (scripts and forms, no same-origin, no popups: the
  app must use `router.open`) and `host.js`, the product side of @forge/bridge.
- `GET /_forge/cdn/<installation uuid>/<resource key>/<file>`: the resource folder, as Forge's CDN
  serves it, with `bridge.js` (the frame side of @forge/bridge) put first into index.html's <head>
  and a CSP that lets the page load nothing but its own files.
- `POST /_forge/invoke` {installationId, moduleKey, localId, path, method, headers?, body?}: a resolver
  call from the page (`invokeRemote`): Forge mints a Forge Invocation Token (RS256, the site's Forge
  key, JWKS at /_sandbox/forge/jwks.json) with the UI call's context (cloudId, siteUrl, moduleKey,
  localId, extension, license; principal = the signed-in account, here the site admin) and calls the
  remote with it: 25 s, no retries, only a JSON answer passes, as the remote contract says. The answer
  is `{success, payload | error: {status, headers, body}}`, what @forge/bridge unwraps.
"""

from __future__ import annotations

import html
import json
import mimetypes
import uuid
from pathlib import Path

import requests
import yaml
from flask import Blueprint, Response, abort, jsonify, request, send_file

from sandbox.web import base, site

bp = Blueprint("forge_host", __name__)
STATIC = Path(__file__).resolve().parent / "forge_static"
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}
UI_TIMEOUT = 25


class DeployError(ValueError):
    pass


def deploy(manifest_path: str, remote_url: str) -> dict:
    """Read what the sandbox needs from a Forge manifest (the admin page, its resource and remote)."""
    path = Path(manifest_path).resolve()
    manifest = yaml.safe_load(path.read_text())
    modules = manifest.get("modules", {})
    page = (modules.get("jira:adminPage") or [None])[0]
    if not page:
        raise DeployError("the manifest has no jira:adminPage")
    resources = {r["key"]: r for r in manifest.get("resources", [])}
    folder = (path.parent / resources[page["resource"]]["path"]).resolve()
    endpoints = {e["key"]: e for e in modules.get("endpoint", [])}
    resolver = endpoints[page["resolver"]["endpoint"]]
    remotes = {r["key"]: r for r in manifest.get("remotes", [])}
    if resolver["remote"] not in remotes:
        raise DeployError(f"endpoint {resolver['key']} names an unknown remote")
    trigger = (modules.get("trigger") or [{}])[0]
    events_endpoint = endpoints.get(trigger.get("endpoint", ""), {})
    return {
        "app_id": manifest["app"]["id"],
        "module_key": page["key"],
        "module_type": "jira:adminPage",
        "title": page.get("title", page["key"]),
        "resource_key": page["resource"],
        "resource_dir": str(folder),
        "remote_url": remote_url.rstrip("/"),
        "events_path": events_endpoint.get("route", {}).get("path", "/forge/events"),
    }


def _apps():
    from sandbox.atlassian import atlassian

    return [a for a in atlassian().apps.values() if a.forge]


def _uuid(ari: str) -> str:
    return ari.rsplit("/", 1)[-1]


def apps_page_path(app) -> str:
    """The Forge admin page's path on the site: /jira/settings/apps/<app uuid>/<environment id>."""
    return f"/jira/settings/apps/{_uuid(app.forge_app_id)}/{app.environment_id}"


def _by_installation(installation_uuid: str):
    for app in _apps():
        if _uuid(app.installation_id) == installation_uuid:
            return app
    return None


def _context(app) -> dict:
    """The context Forge gives a Custom UI (view.getContext) and, for its calls, the FIT."""
    from sandbox.atlassian import _admin

    forge = app.forge
    return {
        "accountId": _admin().account_id,
        "cloudId": site().cloud_id,
        "siteUrl": base(),
        "moduleKey": forge["module_key"],
        "localId": f"ari:cloud:ecosystem::extension/{_uuid(app.forge_app_id)}/{app.environment_id}"
        f"/static/{forge['module_key']}",
        "extension": {"type": forge["module_type"]},
        "environmentId": app.environment_id,
        "environmentType": "DEVELOPMENT",
        "license": {"isActive": True},
        "locale": "en-US",
        "timezone": "UTC",
    }


def _csp(frame_ancestors: str, script: str = "'self'", frame: str = "'none'") -> str:
    return (
        f"default-src 'none'; script-src {script}; style-src 'self'; img-src 'self' data:; "
        f"font-src 'self' data:; connect-src 'self'; frame-src {frame}; form-action 'self'; "
        f"base-uri 'none'; object-src 'none'; frame-ancestors {frame_ancestors}"
    )


@bp.get("/jira/settings/apps/<app_uuid>/<environment_id>")
def apps_page(app_uuid: str, environment_id: str):
    """Jira's admin page of a Forge app: the chrome, the Custom UI frame and the host side of the bridge."""
    app = next(
        (a for a in _apps() if _uuid(a.forge_app_id) == app_uuid and a.environment_id == environment_id),
        None,
    )
    if app is None:
        return Response("No such app page", status=404, mimetype="text/plain")
    forge = app.forge
    context = _context(app)
    extension = {
        "installationId": app.installation_id,
        "moduleKey": forge["module_key"],
        "context": context,
    }
    src = f"/_forge/cdn/{_uuid(app.installation_id)}/{forge['resource_key']}/index.html"
    title = html.escape(forge["title"])
    # `</` cannot end the script element early: the JSON's "/" are escaped.
    data = json.dumps(extension).replace("</", "<\\/")
    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{title} - Apps - Jira</title><link rel='stylesheet' href='/_forge/jira.css'></head><body>"
        "<header><span class='logo'>Jira</span> <span class='site'>Keepstone sandbox</span></header>"
        "<div class='layout'><aside><p class='group'>Apps</p><p>Manage your apps</p>"
        f"<p class='current'>{title}</p></aside>"
        f"<main><h2>{title}</h2>"
        f"<iframe id='app-frame' name='app-frame' title='{title}' src='{html.escape(src)}' "
        "sandbox='allow-scripts allow-forms allow-downloads allow-modals'></iframe></main></div>"
        f"<script type='application/json' id='forge-extension'>{data}</script>"
        "<script src='/_forge/host.js'></script></body></html>"
    )
    resp = Response(body, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = _csp("'self'", frame="'self'")
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


@bp.get("/_forge/<any('host.js', 'bridge.js', 'jira.css'):name>")
def host_file(name: str):
    """The host's own files; bridge.js carries this site's origin (the only parent it talks to)."""
    text = (STATIC / name).read_text()
    if name == "bridge.js":
        text = text.replace("__HOST_ORIGIN__", json.dumps(base()))
    mimetype = "text/css" if name.endswith(".css") else "text/javascript"
    resp = Response(text, mimetype=mimetype)
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Cache-Control"] = "no-cache"
    return resp


@bp.get("/_forge/cdn/<installation_uuid>/<resource_key>/<path:filename>")
def cdn(installation_uuid: str, resource_key: str, filename: str):
    """Serve a file of the app's Custom UI resource; index.html gets the frame side of the bridge."""
    app = _by_installation(installation_uuid)
    if app is None or resource_key != app.forge["resource_key"]:
        abort(404)
    folder = Path(app.forge["resource_dir"])
    target = (folder / filename).resolve()
    if not target.is_relative_to(folder) or not target.is_file():
        abort(404)
    if filename == "index.html":
        page = target.read_text()
        head = page.lower().find("<head>")
        if head < 0:
            abort(500)
        at = head + len("<head>")
        page = page[:at] + '<script src="/_forge/bridge.js"></script>' + page[at:]
        resp = Response(page, mimetype="text/html")
    else:
        resp = send_file(target, mimetype=mimetypes.guess_type(target.name)[0], max_age=0)
    resp.headers["Content-Security-Policy"] = _csp(base())
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp


def _failure(status: int, message: str):
    return {"success": False, "error": {"status": status, "headers": {}, "body": {"message": message}}}


@bp.post("/_forge/invoke")
def invoke():
    """A Custom UI resolver call (invokeRemote): mint the FIT and call the app's remote, as Forge does."""
    from sandbox.atlassian import forge_token

    origin = request.headers.get("Origin")
    if origin is not None and origin != base():
        return jsonify({"errorMessages": ["cross-site call refused"]}), 403
    call = request.get_json(silent=True)
    if not isinstance(call, dict):
        return jsonify({"errorMessages": ["the body must be a JSON object"]}), 400
    app = next((a for a in _apps() if a.installation_id == call.get("installationId")), None)
    if app is None or call.get("moduleKey") != app.forge["module_key"]:
        return jsonify({"errorMessages": ["no such extension on this site"]}), 404
    path, method = call.get("path"), str(call.get("method", "")).upper()
    if (
        not isinstance(path, str)
        or not path.startswith("/")
        or path.startswith("//")
        or method not in METHODS
    ):
        return jsonify(_failure(400, "invokeRemote needs a path starting with / and an HTTP method"))
    context = _context(app)
    module = {"key": app.forge["module_key"], "type": app.forge["module_type"]}
    token = forge_token(
        app,
        context={
            k: context[k] for k in ("cloudId", "siteUrl", "moduleKey", "localId", "extension", "license")
        },
        principal=context["accountId"],
        app={
            "id": app.forge_app_id,
            "version": "1",
            "installationId": app.installation_id,
            "apiBaseUrl": base(),
            "environment": {"type": "DEVELOPMENT", "id": app.environment_id},
            "module": module,
        },
    )
    trace = uuid.uuid4().hex
    headers = {
        "Authorization": f"Bearer {token}",
        "x-b3-traceid": trace,
        "x-b3-spanid": trace[:16],
        "x-b3-sampled": "0",
    }
    for name, value in (call.get("headers") or {}).items():
        if isinstance(name, str) and isinstance(value, str) and name.lower() not in ("authorization", "host"):
            headers.setdefault(name, value)
    body = call.get("body")
    try:
        resp = requests.request(
            method,
            app.forge["remote_url"] + path,
            headers=headers,
            json=body if body is not None and method != "GET" else None,
            timeout=UI_TIMEOUT,
            allow_redirects=False,
        )
    except requests.RequestException as e:
        return jsonify(_failure(502, f"the remote did not answer: {type(e).__name__}"))
    try:
        data = resp.json() if resp.content else None
    except ValueError:
        return jsonify(_failure(502, "the remote's answer is not JSON"))
    if data is not None and not resp.headers.get("Content-Type", "").startswith("application/json"):
        return jsonify(_failure(502, "the remote's answer is not application/json"))
    answer = {
        "status": resp.status_code,
        "headers": {k.lower(): [v] for k, v in resp.headers.items() if k.lower().startswith("content-")},
        "body": data,
    }
    ok = 200 <= resp.status_code < 300
    return jsonify({"success": ok, "payload" if ok else "error": answer})
