"""The Flask app: the Outlook task pane, the preview mailbox and the pages around them."""

from __future__ import annotations

import os
from typing import Any, Mapping

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from services.sentiment import warm
from addin import auth, charts, cli, database, filters, jobs, oidc, routes, security
from addin.routes import api
from addin.settings import load_settings


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    load_settings(app.config, app.instance_path)
    if config:
        app.config.update(config)

    if app.config["PROXIES"]:
        hops = app.config["PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_prefix=hops)  # type: ignore[method-assign]
    database.init_app(app)
    auth.init_app(app)
    oidc.init_app(app)
    security.init_app(app)
    cli.init_app(app)
    filters.init_app(app)
    charts.init_app(app)

    routes.register(app)
    api.init_app(app)
    jobs.init_app(app)
    return app


@jobs.huey.on_startup()
def _worker_app() -> None:
    """The job worker's tasks run in an app of their own, made as it starts; it scores every
    captured mail, so its language models are loaded then too."""
    jobs.start_worker(create_app)
    warm()
