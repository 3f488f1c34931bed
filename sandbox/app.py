"""The sandbox's application factory: a simulated Jira Cloud site on one WSGI app."""

from __future__ import annotations

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from sandbox import admin, agile
from sandbox.atlassian import bp as atlassian_bp
from sandbox.config import SandboxConfig
from sandbox.generate import build_site
from sandbox.guard import Faults, RateLimiter, Stats, install
from sandbox.json_provider import FastJSONProvider
from sandbox.model import Site
from sandbox.platform import content, dashboards, issues, projects, search, sharing
from sandbox.platform import site as site_endpoints
from sandbox.v2 import API_VERSION, V2_PREFIXES, speak_v2
from sandbox.web import JiraHTTPError, SandboxState


def load_site(config: SandboxConfig) -> Site:
    """Build the site the configuration asks for: from a site file, or generated from the seed."""
    if config.site_file:
        from sandbox.sitefile import load_site_file

        site = load_site_file(config, config.site_file)
    else:
        site = build_site(config)
    sharing.attach_board_filters(site)  # every board has a filter of its own, as in Jira
    return site


def create_app(config: SandboxConfig | None = None) -> Flask:
    """Create a sandbox site app for `config` (defaults: a small generated site)."""
    config = config or SandboxConfig()
    app = Flask(__name__)
    app.json = FastJSONProvider(app)
    app.extensions["sandbox"] = SandboxState(
        config=config,
        site=load_site(config),
        limiter=RateLimiter(config.rate_limit, config.bucket_size(), config.quota_points_per_hour),
        faults=Faults(config.fault_rate, config.seed),
        stats=Stats(),
    )
    install(app)
    app.wsgi_app = _V2Alias(app.wsgi_app)
    for bp in (
        site_endpoints.bp,
        site_endpoints.edge,
        projects.bp,
        sharing.bp,
        dashboards.bp,
        search.bp,
        issues.bp,
        content.bp,
        content.media,
        agile.bp,
        admin.bp,
        atlassian_bp,
    ):
        app.register_blueprint(bp)

    app.after_request(speak_v2)

    @app.errorhandler(JiraHTTPError)
    def jira_error(e: JiraHTTPError):
        return e.response()

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        if request.path.startswith("/rest/"):
            message = "Not Found" if e.code == 404 else e.description
            return jsonify({"errorMessages": [message], "errors": {}}), e.code
        return e

    @app.get("/")
    def home():
        site = app.extensions["sandbox"].site
        live = sum(1 for i in site.issues.values() if not i.deleted)
        return (
            f"<h1>Keepstone sandbox: a simulated Jira Cloud site</h1><p>cloudId {site.cloud_id}; "
            f"{len([p for p in site.projects.values() if not p.deleted])} projects, {live} issues.</p>"
        )

    return app


class _V2Alias:
    """Serve /rest/api/2/... and /rest/api/latest/... from the v3 routes, marked as v2 for the edge.

    Only the removed legacy search keeps its own v2 route (410 on Cloud, paged on Data Center); everything
    else under /rest/api/2/search (search/jql, approximate-count) is the v3 operation spoken in v2. A
    Data Center site has no v3: its /rest/api/3/... is marked so that the guard answers 404.
    """

    def __init__(self, wsgi_app) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        for prefix in V2_PREFIXES:
            if path.startswith(prefix):
                rest = path[len(prefix) :]
                environ[API_VERSION] = 2
                environ["PATH_INFO"] = (
                    "/rest/api/2/search" if rest.rstrip("/") == "search" else "/rest/api/3/" + rest
                )
                break
        else:
            if path.startswith("/rest/api/3/"):
                environ[API_VERSION] = 3
        return self.wsgi_app(environ, start_response)
