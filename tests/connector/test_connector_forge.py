"""The Forge side of the connector over real HTTP: every remote endpoint refuses forged, expired,
misdirected and foreign Forge Invocation Tokens; lifecycle events end in the same state in any order and
however often they come (a changing installationId included); More features' one-time URL."""

from __future__ import annotations

import itertools
import re
import time
import uuid

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from connector.tenants import ForgeInstallation, HandoffTicket, Tenant

OTHER_APP = "ari:cloud:ecosystem::app/0b6e2d5c-6f1a-4f3e-9a51-0ther0app0001"
FOREIGN_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)

# Every route the connector serves to Forge (a FIT on each), with a body where it takes one. The
# coverage test below keeps this table in step with the app's URL map.
FORGE_ROUTES = [
    ("GET", "/forge/panel/status", None),
    ("PUT", "/forge/panel/schedule", {"days": ["mon"], "hour": 3}),
    ("POST", "/forge/panel/backup", {}),
    ("GET", "/forge/panel/account", None),
    ("PUT", "/forge/panel/account", {"email": "admin@example.com", "api_token": "sandbox-admin-token"}),
    ("GET", "/forge/panel/runs/run_missing", None),
    ("POST", "/forge/panel/more", {}),
    ("POST", "/forge/events", {"eventType": "avi:forge:uninstalled:app"}),
]
RULE_OF = {
    "/forge/panel/status": "/forge/panel/<action>",
    "/forge/panel/schedule": "/forge/panel/<action>",
    "/forge/panel/backup": "/forge/panel/<action>",
    "/forge/panel/account": "/forge/panel/<action>",
    "/forge/panel/runs/run_missing": "/forge/panel/runs/<path:run_id>",
}


def _atlassian(stack):
    return stack.site.server.app.extensions["atlassian"]


def _fit(stack, **claims) -> str:
    """A FIT minted by the sandbox's Forge (its key and kid), claims overridable."""
    resp = requests.post(stack.site.url + "/_sandbox/apps/keepstone/fit", json=claims, timeout=10)
    return resp.json()["token"]


def _claims(stack, **extra) -> dict:
    info = stack.info()
    now = int(time.time())
    body = {
        "iss": "forge/invocation-token",
        "aud": info["forgeAppId"],
        "iat": now,
        "nbf": now,
        "exp": now + 60,
        "app": {"id": info["forgeAppId"], "installationId": _installation(stack)},
        "context": {"cloudId": info["cloudId"], "siteUrl": stack.site.url},
        "principal": "5b10admin",
    }
    body.update(extra)
    return body


def _installation(stack) -> str:
    return _atlassian(stack).apps["keepstone"].installation_id


ATTACKS = {
    # signed by someone else's key under Forge's kid
    "forged": lambda s: jwt.encode(
        _claims(s), FOREIGN_KEY, algorithm="RS256", headers={"kid": s.info()["forgeKid"]}
    ),
    "expired": lambda s: _fit(
        s, iat=int(time.time()) - 900, nbf=int(time.time()) - 900, exp=int(time.time()) - 600
    ),
    "not yet valid": lambda s: _fit(s, nbf=int(time.time()) + 600, exp=int(time.time()) + 900),
    "wrong audience": lambda s: _fit(s, aud="ari:cloud:ecosystem::app/someone-else"),
    # a genuine FIT from Forge, for another app on the same site
    "another app's token": lambda s: _fit(
        s,
        aud=OTHER_APP,
        app={"id": OTHER_APP, "installationId": f"ari:cloud:ecosystem::installation/{uuid.uuid4()}"},
    ),
    "HS256 with the public key": lambda s: jwt.encode(
        _claims(s), "x" * 32, algorithm="HS256", headers={"kid": s.info()["forgeKid"]}
    ),
    "no token": lambda s: "",
}


def _state(stack) -> tuple:
    """Everything a refused call must leave alone: tenants, installations, tickets, the backend."""
    with stack.tenants().sessions() as s:
        tenants = sorted(
            (t.cloud_id, t.installation_id, t.installed, t.enabled, t.site_url) for t in s.query(Tenant)
        )
        installs = sorted((i.installation_id, i.uninstalled) for i in s.query(ForgeInstallation))
        tickets = s.query(HandoffTicket).count()
    orgs, runs = stack.backend_state()
    return tenants, installs, tickets, orgs, runs


def _call(stack, method: str, path: str, body, token: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    kwargs = {"json": body} if body is not None else {}
    return requests.request(method, stack.url + path, headers=headers, timeout=20, **kwargs)


def _assert_table_covers_every_forge_route(installed) -> None:
    rules = {
        (m, r.rule)
        for r in installed.app.url_map.iter_rules()
        for m in r.methods - {"HEAD", "OPTIONS"}
        if r.rule.startswith("/forge/") and not r.rule.startswith("/forge/handoff/")
    }
    covered = {(m, RULE_OF.get(p, p)) for m, p, _ in FORGE_ROUTES}
    assert rules == covered, rules ^ covered


def test_every_forge_endpoint_refuses_every_bad_token_and_nothing_changes(installed):
    before = _state(installed)
    for attack, make in ATTACKS.items():
        token = make(installed)
        for method, path, body in FORGE_ROUTES:
            r = _call(installed, method, path, body, token)
            assert r.status_code == 401, (attack, method, path, r.status_code, r.text[:200])
            assert r.json()["error"]["code"] == "invalid_token"
    # Valid tokens that may not act: for a site without the app; of an installation that is not the
    # site's current one (the panel's calls: events have their own rules, below).
    other_site = _fit(installed, context={"cloudId": str(uuid.uuid4()), "siteUrl": "https://else.example"})
    old = _fit(
        installed,
        app={"id": installed.info()["forgeAppId"], "installationId": "ari:cloud:ecosystem::installation/old"},
    )
    for token in (other_site, old):
        for method, path, body in FORGE_ROUTES[:-1]:
            r = _call(installed, method, path, body, token)
            assert r.status_code == 403, (method, path, r.status_code, r.text[:200])
    assert _state(installed) == before


def test_the_table_covers_every_forge_route_and_a_valid_token_reaches_each(installed):
    _assert_table_covers_every_forge_route(installed)
    token = _fit(installed)
    for method, path, body in FORGE_ROUTES:
        if path == "/forge/events":
            body = {
                "eventType": "avi:forge:upgraded:app",
                "context": {"cloudId": installed.info()["cloudId"]},
            }
        r = _call(installed, method, path, body, token)
        assert r.status_code not in (401, 403) and r.status_code < 500, (method, path, r.text[:200])


# --- lifecycle: any order, any repetition, a changing installationId --------------------------------


def _event(stack, cloud_id: str, event: str, installation: str) -> requests.Response:
    """A lifecycle event as Forge sends it, its FIT signed here with the sandbox Forge's key and kid."""
    at, app_id = _atlassian(stack), stack.info()["forgeAppId"]
    claims = _claims(
        stack,
        app={"id": app_id, "installationId": installation},
        context={"cloudId": cloud_id, "siteUrl": stack.site.url},
    )
    token = jwt.encode(claims, at.forge_key, algorithm="RS256", headers={"kid": at.forge_kid})
    body = {"eventType": f"avi:forge:{event}:app", "context": {"cloudId": cloud_id}}
    return _call(stack, "POST", "/forge/events", body, token)


def _tenant(stack, cloud_id: str):
    t = stack.tenants().get(cloud_id)
    return None if t is None else (t.installed, t.installation_id)


ONE_INSTALLATION = [("installed", "I1"), ("upgraded", "I1"), ("uninstalled", "I1")]
REINSTALL = [("installed", "I1"), ("uninstalled", "I1"), ("installed", "I2"), ("upgraded", "I2")]


def test_forge_lifecycle_ends_the_same_in_every_order_and_on_every_replay(installed):
    """Every order of the events (Forge delivers with retries, not in order) ends in one state: one
    installation ends uninstalled; a reinstall ends installed with its new installationId. Delivering
    all of them again (a retry storm, or recorded events replayed) changes nothing."""
    for events, end in ((ONE_INSTALLATION, (False, None)), (REINSTALL, (True, "I2"))):
        for order in itertools.permutations(events):
            cloud_id = str(uuid.uuid4())
            ids = {k: f"ari:cloud:ecosystem::installation/{uuid.uuid4()}" for k in ("I1", "I2")}
            for event, installation in order:
                assert _event(installed, cloud_id, event, ids[installation]).status_code == 200
            found = _tenant(installed, cloud_id)  # None: the uninstall came first, nothing was installed
            assert (found or (False, None))[0] == end[0], order
            if end[0]:
                assert found[1] == ids[end[1]], order
            for event, installation in order:
                assert _event(installed, cloud_id, event, ids[installation]).status_code == 200
            assert _tenant(installed, cloud_id) == found, order
    # An installation belongs to one site.
    installation = f"ari:cloud:ecosystem::installation/{uuid.uuid4()}"
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    assert _event(installed, first, "installed", installation).status_code == 200
    assert _event(installed, second, "uninstalled", installation).status_code == 403
    assert _tenant(installed, first) == (True, installation) and _tenant(installed, second) is None


def test_recorded_events_replayed_later_change_nothing(installed):
    cloud_id = installed.info()["cloudId"]
    install_token, uninstall_token = _fit(installed), _fit(installed)
    installed_body = {"eventType": "avi:forge:installed:app", "context": {"cloudId": cloud_id}}
    uninstalled_body = {"eventType": "avi:forge:uninstalled:app", "context": {"cloudId": cloud_id}}
    # A body naming another installation than its token's is refused.
    other = {**uninstalled_body, "installationId": "ari:cloud:ecosystem::installation/someone-else"}
    before = _state(installed)
    assert _call(installed, "POST", "/forge/events", other, uninstall_token).status_code == 403
    # A recorded event whose token has expired is refused.
    now = int(time.time())
    stale = _fit(installed, iat=now - 900, nbf=now - 900, exp=now - 600)
    assert _call(installed, "POST", "/forge/events", uninstalled_body, stale).status_code == 401
    assert _state(installed) == before

    # The site uninstalls; the install event recorded earlier, replayed byte for byte within its
    # token's lifetime, does not revive the app, and the old installation's token opens no panel.
    assert requests.post(installed.site.url + "/_sandbox/apps/keepstone/uninstall", timeout=30).ok
    assert not installed.tenants().get(cloud_id).installed
    before = _state(installed)
    assert _call(installed, "POST", "/forge/events", installed_body, install_token).status_code == 200
    assert _state(installed) == before
    assert _call(installed, "GET", "/forge/panel/status", None, install_token).status_code == 403

    # A reinstall gets a new installationId; the old installation's uninstall replayed leaves it be.
    installed.install()
    assert installed.tenants().get(cloud_id).installation_id == _installation(installed)
    before = _state(installed)
    assert _call(installed, "POST", "/forge/events", uninstalled_body, uninstall_token).status_code == 200
    assert _state(installed) == before
    assert installed.backend_state()[0][cloud_id]["state"] == "active"
    assert _call(installed, "GET", "/forge/panel/status", None, _fit(installed)).status_code == 200


# --- More features: a one-time URL for router.open ----------------------------------------------------


def _more(stack) -> str:
    r = _call(stack, "POST", "/forge/panel/more", {}, _fit(stack))
    assert r.status_code == 200, r.text
    assert r.json()["expires_in"] == 60
    return r.json()["url"]


def test_more_features_url_signs_in_once_and_only_while_fresh(installed, monkeypatch):
    url = _more(installed)
    assert url.startswith(installed.url + "/forge/handoff/")
    with installed.tenants().sessions() as s:  # only the ticket's hash is stored
        assert url.rsplit("/", 1)[1] not in [t.ticket_hash for t in s.query(HandoffTicket)]
    page = requests.get(url, timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert page.headers["Referrer-Policy"] == "strict-origin"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert f"form-action {installed.backend.url}" in page.headers["Content-Security-Policy"]
    token = re.search(r"name='token' value='([^']+)'", page.text).group(1)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["tenant"] == installed.info()["cloudId"] and claims["aud"] == "keepstone-backend-sso"
    assert claims["sub"] == _atlassian_admin(installed)  # the FIT's principal
    assert claims["jira_admin"] is True  # from the Forge admin page: an admin member in the backend
    sso = requests.post(
        installed.backend.url + "/sso",
        data={"token": token},
        headers={"Origin": installed.url},
        allow_redirects=False,
        timeout=10,
    )
    assert sso.status_code == 303 and sso.headers["Location"] == "/"
    again = requests.get(url, timeout=10)  # the URL works once
    assert again.status_code == 401 and again.json()["error"]["code"] == "invalid_token"
    # Unknown and oversized tickets, an expired one, one of a site that uninstalled since.
    for ticket in ("A" * 43, "A" * 300):
        assert requests.get(installed.url + "/forge/handoff/" + ticket, timeout=10).status_code == 401
    import connector.panel

    with monkeypatch.context() as m:
        m.setattr(connector.panel, "TICKET_LIFETIME", -1)
        expired = _call(installed, "POST", "/forge/panel/more", {}, _fit(installed)).json()["url"]
    assert requests.get(expired, timeout=10).status_code == 401
    fresh = _more(installed)
    assert requests.post(installed.site.url + "/_sandbox/apps/keepstone/uninstall", timeout=30).ok
    assert requests.get(fresh, timeout=10).status_code == 403


def _atlassian_admin(stack) -> str:
    from sandbox.atlassian import _admin

    with stack.site.server.app.app_context():
        return _admin().account_id
