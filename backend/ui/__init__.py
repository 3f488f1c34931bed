"""The management UI: sign-in page and the dashboard of an organisation's runs."""
