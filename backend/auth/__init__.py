"""Who is calling: service JWTs from the connector, SSO hand-offs, and browser sessions (flask-login)."""
