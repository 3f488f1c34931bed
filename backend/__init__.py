"""The Keepstone management service and the backup/restore engine it runs."""
