"""The Forge manifest and the Connect descriptor validate against their schemas."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import requests
import yaml

ROOT = Path(__file__).resolve().parents[2]
FORGE_SCHEMA = ROOT / "node_modules/@forge/manifest/out/schema/manifest-schema.json"
CONNECT_SCHEMA = ROOT / "manifest/atlassian-connect.schema.json"


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
    assert set(trigger["events"]) == {"avi:forge:installed:app", "avi:forge:upgraded:app"}
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
