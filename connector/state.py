"""The connector's per-app state: configuration, tenants, verifiers, keys and the backend client."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from connector.config import ConnectorConfig
from connector.connect import ConnectVerifier
from connector.forge import ForgeVerifier
from connector.handoff import BackendClient, KeyRing
from connector.tenants import TenantStore


@dataclass
class ConnectorState:
    config: ConnectorConfig
    tenants: TenantStore
    connect: ConnectVerifier
    forge: ForgeVerifier
    keys: KeyRing
    backend: BackendClient


def state() -> ConnectorState:
    """Return the running app's connector state."""
    return current_app.extensions["connector"]
