"""Tattletale's Flask application."""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from config import PROJECT_ROOT, Settings, load_settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app. Only wiring: no migrations, no network, no threads started."""
    from portal import cli, i18n
    from portal.api import bp as api_bp
    from portal.api import init_api
    from portal.extensions import csrf, db, login_manager, migrate
    from portal.http import edge, errors, headers, logs, ratelimit, rendering, transactions
    from portal.http.bodies import PortalRequest
    from portal.jobs import init_jobs
    from portal.ops import bp as ops_bp
    from portal.public import bp as public_bp
    from portal.services import crypto, public_cache
    from portal.staff import bp as staff_bp

    settings = settings or load_settings()
    app = Flask(__name__, instance_path=str(settings.instance_path))
    # Decides each request's body limit from its endpoint, before anything reads it.
    app.request_class = PortalRequest
    app.config.update(
        TATTLETALE=settings,
        SECRET_KEY=settings.secret_key,
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
        # Forms and small API bodies. Views marked ``streams_body`` (tus PATCH) get
        # the largest upload as their limit instead (portal/http/bodies.py).
        MAX_CONTENT_LENGTH=32 * 1024 * 1024,
        TESTING=settings.is_testing,
        WTF_CSRF_TIME_LIMIT=8 * 3600,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.is_production,
        # The __Host- prefix makes browsers refuse the cookie unless it is Secure,
        # has Path=/ and no Domain: a subdomain cannot plant or read it.
        SESSION_COOKIE_NAME="__Host-session" if settings.is_production else "session",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=settings.is_production,
        PREFERRED_URL_SCHEME="https" if settings.is_production else "http",
    )
    app.wsgi_app = headers.DropServerHeader(app.wsgi_app)  # type: ignore[method-assign]
    if settings.trusted_proxies:
        # Behind a load balancer: take the client address from X-Forwarded-For, but
        # only as many hops as the operator says there are proxies.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies
        )

    edge.init_app(app)  # first: every later hook may ask who the request is for
    i18n.init_app(app)  # the public site's language, decided from its URL or browser
    logs.configure_logging(app)
    ratelimit.init_app(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)
    crypto.init_app(app)
    init_jobs(app)
    public_cache.init_app(app)  # every commit that changes a public page says so

    app.register_blueprint(public_bp)
    app.register_blueprint(ops_bp)
    app.register_blueprint(staff_bp, url_prefix="/staff")
    init_api(app)  # the API blueprint, at /api/v1, with its OpenAPI document
    csrf.exempt(api_bp)  # the API takes bearer tokens, never cookies: no CSRF to forge

    headers.init_app(app)
    rendering.init_app(app)
    errors.init_app(app)
    transactions.init_app(app)
    cli.init_app(app)
    return app
