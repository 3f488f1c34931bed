"""Storage fixtures: every backend, real where it can run here (defined in tests/storage/servers.py)."""

from tests.storage.servers import AZURITE, AZURITE_KEY, aws_keys, azurite_server, s3_server  # noqa: F401
