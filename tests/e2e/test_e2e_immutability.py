"""Immutability on the storages page, in a real browser against the real backend and moto's S3 with Object
Lock and Azurite: an S3 storage whose test proves Object Lock says so in the list, an Azurite one fails the
"Check immutability" step with the reason; screenshots at 375 and 1280 px, axe-core clean."""

from __future__ import annotations

import uuid

import pytest

from tests.backend.test_storages import azure_body, azure_parts, s3_body, s3_client
from tests.e2e.test_e2e_storages import both_widths, stack_fixture  # noqa: F401  (the `stack` fixture)
from tests.e2e.ui_stack import TENANT, sign_in
from tests.storage.servers import azurite_server, s3_auth_server  # noqa: F401

pytestmark = pytest.mark.browser


@pytest.mark.s3
@pytest.mark.azurite
def test_the_storages_page_says_whether_immutability_is_enforced(
    stack, browser_page, azurite, s3_server_with_auth
):
    s3 = s3_server_with_auth
    bucket = f"lock{uuid.uuid4().hex[:12]}"
    s3_client(s3).create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    container = f"c{uuid.uuid4().hex[:12]}"
    azure_parts(azurite)[1].create_container(container)
    settings = {"immutability": {"mode": "compliance", "retain_days": 30}}
    locked = stack.backend.call(
        "POST", f"/api/v1/organisations/{TENANT}/storages", TENANT,
        json={**s3_body(s3, bucket), "name": "Object Lock", **settings},
    ).json()  # fmt: skip
    azure = stack.backend.call(
        "POST", f"/api/v1/organisations/{TENANT}/storages", TENANT,
        json={**azure_body(azurite, container), "name": "Azurite WORM", **settings},
    ).json()  # fmt: skip

    page = browser_page
    sign_in(page, stack)
    page.get_by_role("navigation", name="Keepstone").get_by_role("link", name="Storages").click()
    row = page.locator(f"tr[data-storage='{locked['id']}']")
    assert "not tested yet" in row.inner_text()
    with page.expect_navigation():
        row.get_by_role("button", name="Test connection").click()
    assert "Connection works" in page.locator("#probe-result").inner_text()
    row = page.locator(f"tr[data-storage='{locked['id']}']")
    assert "enforced: proven by the last test" in row.inner_text()

    row = page.locator(f"tr[data-storage='{azure['id']}']")
    with page.expect_navigation():
        row.get_by_role("button", name="Test connection").click()
    result = page.locator("#probe-result").inner_text()
    assert "Check immutability" in result and "not enforced by this storage" in result and "501" in result
    row = page.locator(f"tr[data-storage='{azure['id']}']")
    assert "not enforced by this storage" in row.inner_text()
    both_widths(page, "storages-immutability")
