"""Install, reinstall, enable, disable and uninstall, Connect and Forge, as real lifecycle calls."""

from __future__ import annotations

import requests


def test_install_records_the_tenant_by_cloud_id_and_registers_it_with_the_backend(installed):
    info = installed.info()
    tenant = installed.tenants().get(info["cloudId"])
    assert tenant.client_key == info["clientKey"]
    assert tenant.shared_secret == info["sharedSecret"]
    assert tenant.site_url == installed.site.url
    assert tenant.installation_id.startswith("ari:cloud:ecosystem::installation/")
    assert tenant.installed and tenant.enabled
    org = installed.backend_state()[0][info["cloudId"]]
    assert org["state"] == "active" and org["site_url"] == installed.site.url


def test_signed_reinstall_replaces_the_shared_secret(installed):
    before = installed.info()["sharedSecret"]
    installed.install()
    after = installed.info()["sharedSecret"]
    assert after != before
    assert installed.tenants().by_client_key(installed.info()["clientKey"]).shared_secret == after


def test_uninstall_suspends_in_the_backend_and_keeps_the_tenant_row(installed):
    cloud_id = installed.info()["cloudId"]
    resp = requests.post(installed.site.url + "/_sandbox/apps/keepstone/uninstall", timeout=30).json()
    # Connect's disabled and uninstalled, then Forge's avi:forge:uninstalled:app.
    assert [(e["event"], e["status"]) for e in resp["events"]] == [
        ("disabled", 204),
        ("uninstalled", 204),
        ("avi:forge:uninstalled:app", 200),
    ]
    tenant = installed.tenants().get(cloud_id)
    assert not tenant.installed and not tenant.enabled
    assert installed.backend_state()[0][cloud_id]["state"] == "suspended"


def test_lifecycle_events_are_idempotent_and_order_independent(installed):
    cloud_id = installed.info()["cloudId"]
    url = installed.site.url + "/_sandbox/apps/keepstone/uninstall"
    assert requests.post(url, timeout=30).status_code == 200
    # A late `disabled` and a repeated `uninstalled` after the uninstall change nothing.
    again = requests.post(url, timeout=30).json()
    assert [e["status"] for e in again["events"]] == [204, 204, 200]
    enable = installed.token("POST", "/connect/enabled")
    r = requests.post(installed.url + "/connect/enabled", json={}, headers={"Authorization": f"JWT {enable}"})
    assert r.status_code == 204
    tenant = installed.tenants().get(cloud_id)
    assert not tenant.installed and not tenant.enabled
    installed.install()
    tenant = installed.tenants().get(cloud_id)
    assert tenant.installed and tenant.enabled


def test_disable_then_enable_toggles_the_panel(installed):
    for event, expected in (("disabled", 403), ("enabled", 200)):
        token = installed.token("POST", f"/connect/{event}")
        r = requests.post(
            installed.url + f"/connect/{event}", json={}, headers={"Authorization": f"JWT {token}"}
        )
        assert r.status_code == 204
        ctx = installed.context_token()
        status = requests.get(installed.url + "/panel/api/status", headers={"Authorization": f"JWT {ctx}"})
        assert status.status_code == expected


def test_forge_install_event_alone_creates_the_tenant(stack):
    r = requests.post(
        stack.site.url + "/_sandbox/apps/install",
        json={"connector_url": stack.url, "connect": False},
        timeout=30,
    )
    assert [e["status"] for e in r.json()["events"]] == [200]
    tenant = stack.tenants().get(r.json()["cloudId"])
    assert tenant.installed and tenant.client_key is None


def test_forge_panel_call_with_a_valid_fit_reads_status(installed):
    fit = requests.post(installed.site.url + "/_sandbox/apps/keepstone/fit", json={}, timeout=10).json()[
        "token"
    ]
    r = requests.get(installed.url + "/forge/panel/status", headers={"Authorization": f"Bearer {fit}"})
    assert r.status_code == 200
    assert r.json()["protected_projects"] == 0 and r.json()["cloud_id"] == installed.info()["cloudId"]


def _forge_event(stack, event: str) -> requests.Response:
    info = stack.info()
    fit = requests.post(stack.site.url + "/_sandbox/apps/keepstone/fit", json={}, timeout=10).json()["token"]
    body = {"eventType": event, "context": {"cloudId": info["cloudId"]}}
    return requests.post(stack.url + "/forge/events", json=body, headers={"Authorization": f"Bearer {fit}"})


def test_forge_upgrade_keeps_the_tenant_and_uninstall_suspends_it(installed):
    cloud_id = installed.info()["cloudId"]
    secret = installed.tenants().get(cloud_id).shared_secret
    assert _forge_event(installed, "avi:forge:upgraded:app").status_code == 200
    tenant = installed.tenants().get(cloud_id)
    assert tenant.installed and tenant.shared_secret == secret
    for _ in range(2):  # repeated delivery (Forge retries events) ends in the same state
        assert _forge_event(installed, "avi:forge:uninstalled:app").status_code == 200
        assert not installed.tenants().get(cloud_id).installed
    assert installed.backend_state()[0][cloud_id]["state"] == "suspended"


def test_forge_event_for_another_cloud_than_its_token_is_refused(installed):
    fit = requests.post(installed.site.url + "/_sandbox/apps/keepstone/fit", json={}, timeout=10).json()[
        "token"
    ]
    body = {
        "eventType": "avi:forge:uninstalled:app",
        "context": {"cloudId": "00000000-0000-4000-8000-000000000000"},
    }
    r = requests.post(installed.url + "/forge/events", json=body, headers={"Authorization": f"Bearer {fit}"})
    assert r.status_code == 403
    assert installed.tenants().get(installed.info()["cloudId"]).installed
