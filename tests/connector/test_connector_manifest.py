"""The Forge manifest passes @forge/manifest's full validation (the built Custom UI present), asks for
the least it needs, and names routes the connector serves; the Connect descriptor validates too."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest
import requests
import yaml

ROOT = Path(__file__).resolve().parents[2]
FORGE_SCHEMA = ROOT / "node_modules/@forge/manifest/out/schema/manifest-schema.json"
CONNECT_SCHEMA = ROOT / "manifest/atlassian-connect.schema.json"
MANIFEST = ROOT / "manifest/manifest.yml"
CUSTOM_UI = ROOT / "manifest/build/panel"
# @forge/manifest's own entry point, as `forge lint`/`forge deploy` run it: schema and every validator
# (resources present, references, permissions, remotes, triggers ...).
VALIDATE = """
const { validate } = require(process.argv[1]);
(async () => {
  const results = [];
  for (const path of process.argv.slice(2)) {
    const r = await validate(false, path);
    results.push({ success: r.success, errors: r.errors || [] });
  }
  console.log(JSON.stringify(results));
})().catch((e) => { console.error(e); process.exit(2); });
"""


def forge_validate(*manifests: Path) -> list[dict]:
    """Run @forge/manifest's `validate(false, path)` on manifest files (one node process: the schema
    takes seconds to compile) and return the results."""
    if shutil.which("node") is None or not FORGE_SCHEMA.exists():
        pytest.skip("node or node_modules/@forge/manifest missing (make install)")
    done = subprocess.run(
        ["node", "-e", VALIDATE, str(ROOT / "node_modules/@forge/manifest"), *map(str, manifests)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_forge_manifest_passes_the_full_forge_validation_and_it_can_fail(tmp_path):
    assert (CUSTOM_UI / "index.html").exists(), "the Custom UI is not built: run `make install`"
    manifest = yaml.safe_load(MANIFEST.read_text())
    bare = tmp_path / "bare" / "manifest.yml"  # the same manifest, no build/panel beside it
    bare.parent.mkdir()
    bare.write_text(yaml.safe_dump(manifest))
    broken = tmp_path / "broken" / "manifest.yml"  # the Custom UI there, a resolver naming nothing
    shutil.copytree(CUSTOM_UI, broken.parent / "build/panel")
    manifest["modules"]["jira:adminPage"][0]["resolver"]["endpoint"] = "no-such-endpoint"
    broken.write_text(yaml.safe_dump(manifest))
    real, without_ui, bad_reference = forge_validate(MANIFEST, bare, broken)
    assert real == {"success": True, "errors": []}
    assert not without_ui["success"]
    assert [e["message"] for e in without_ui["errors"]] == [
        "missing resource 'build/panel' is being referenced by 'panel' in resources"
    ]
    assert not bad_reference["success"] and bad_reference["errors"]


def test_forge_manifest_asks_for_the_least_it_needs():
    manifest = yaml.safe_load(MANIFEST.read_text())
    # No product scopes: the management service reads Jira with the admin's API token, not Forge's.
    assert "scopes" not in manifest["permissions"]
    # Egress to the connector only, and Forge sends it no OAuth tokens.
    assert manifest["permissions"] == {"external": {"fetch": {"backend": [{"remote": "connector"}]}}}
    assert [r["key"] for r in manifest["remotes"]] == ["connector"]
    assert manifest["remotes"][0]["operations"] == ["compute"]
    assert manifest["remotes"][0]["baseUrl"].startswith("https://")
    for endpoint in manifest["modules"]["endpoint"]:
        assert endpoint["remote"] == "connector"
        assert endpoint["auth"] == {"appUserToken": {"enabled": False}, "appSystemToken": {"enabled": False}}


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.refs += [v for k, v in attrs if k in ("src", "href") and v]


def test_the_custom_ui_loads_only_its_own_files():
    if not (CUSTOM_UI / "index.html").exists():
        pytest.fail("the Custom UI is not built: run `make install`")
    parser = _Refs()
    parser.feed((CUSTOM_UI / "index.html").read_text())
    assert sorted(parser.refs) == ["panel.css", "panel.js", "tokens.css"]
    assert all((CUSTOM_UI / ref).is_file() for ref in parser.refs)
    assert (
        "@forge/bridge" in (CUSTOM_UI / "panel.js").read_text()
        or "__bridge" in (CUSTOM_UI / "panel.js").read_text()
    )
    css = (CUSTOM_UI / "tokens.css").read_text()
    assert 'html[data-color-mode="dark"][data-theme~="dark:dark"]' in css and "--ds-surface:" in css
    assert "url(" not in css and "@import" not in css


def _errors(schema: dict, doc: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(schema)
    return [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(doc)]


def test_forge_manifest_validates_against_the_forge_schema():
    schema = json.loads(FORGE_SCHEMA.read_text())
    manifest = yaml.safe_load((ROOT / "manifest/manifest.yml").read_text())
    assert _errors(schema, manifest) == []
    page = manifest["modules"]["jira:adminPage"][0]
    assert page["resource"] in {r["key"] for r in manifest["resources"]}
    endpoints = {e["key"]: e for e in manifest["modules"]["endpoint"]}
    assert endpoints[page["resolver"]["endpoint"]]["remote"] == manifest["remotes"][0]["key"]
    trigger = manifest["modules"]["trigger"][0]
    assert set(trigger["events"]) == {
        "avi:forge:installed:app",
        "avi:forge:upgraded:app",
        "avi:forge:uninstalled:app",
    }
    assert endpoints[trigger["endpoint"]]["route"]["path"] == "/forge/events"


def test_forge_schema_rejects_a_broken_manifest():
    schema = json.loads(FORGE_SCHEMA.read_text())
    manifest = yaml.safe_load((ROOT / "manifest/manifest.yml").read_text())
    manifest["app"]["id"] = "not-an-ari"
    manifest["modules"]["trigger"][0].pop("endpoint")
    assert len(_errors(schema, manifest)) >= 2


def test_served_connect_descriptor_validates_and_names_our_base_url(stack):
    schema = json.loads(CONNECT_SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    served = requests.get(stack.url + "/atlassian-connect.json", timeout=10).json()
    assert _errors(schema, served) == []
    assert served["baseUrl"] == stack.url
    assert served["apiMigrations"] == {"signed-install": True, "context-qsh": True, "gdpr": True}
    assert served["authentication"] == {"type": "jwt"}
    assert served["modules"]["adminPages"][0]["url"] == "/panel"


def test_connect_schema_rejects_a_broken_descriptor():
    schema = json.loads(CONNECT_SCHEMA.read_text())
    doc = json.loads((ROOT / "manifest/atlassian-connect.json").read_text())
    doc["scopes"] = ["READ", "EVERYTHING"]
    doc["lifecycle"]["installed"] = "installed"
    del doc["authentication"]
    assert len(_errors(schema, doc)) == 3


def test_the_committed_custom_ui_is_what_its_sources_build(tmp_path):
    """The committed build carries the digest of its sources, and rebuilding gives the same bytes.

    Edit static/panel or the panel template without `make install` and this fails, as it must: the
    demo and the Forge deployment would ship an old panel.
    """
    from connector.customui import ESBUILD, STAMP, build, is_stale, source_digest

    assert STAMP.read_text().split()[0] == source_digest(), "a Custom UI source changed: run `make install`"
    assert not is_stale()
    if not ESBUILD.exists():
        pytest.fail("esbuild is not installed: run `make install` (npm ci)")
    rebuilt = tmp_path / "panel"
    build(rebuilt)
    names = sorted(f.name for f in CUSTOM_UI.iterdir())
    assert (
        names
        == sorted(f.name for f in rebuilt.iterdir())
        == ["index.html", "panel.css", "panel.js", "tokens.css"]
    )
    for name in names:
        assert (rebuilt / name).read_bytes() == (CUSTOM_UI / name).read_bytes(), (
            f"{name} differs from its sources"
        )


def test_a_changed_source_makes_the_build_stale(tmp_path, monkeypatch):
    import connector.customui as customui

    root = tmp_path / "root"
    for name in (*customui.SOURCES, "package-lock.json"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(customui.ROOT / name, root / name)
    out = root / "manifest" / "build" / "panel"
    shutil.copytree(CUSTOM_UI, out)
    shutil.copy(customui.STAMP, out.with_name("panel.sha256"))
    monkeypatch.setattr(customui, "ROOT", root)
    assert not customui.is_stale(out)
    (root / "static/panel/panel.js").write_text((root / "static/panel/panel.js").read_text() + "\n// edit\n")
    assert customui.is_stale(out)
