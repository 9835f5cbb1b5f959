"""The public site: appeals, agency pages, search, the appeal page, the feed, and
the published media. Every view here is anonymous: nothing records who asks."""

from __future__ import annotations

from datetime import datetime

from flask import abort, make_response, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from portal.http.media import serve_published_rendition
from portal.models import Appeal, Rendition
from portal.models.base import utcnow
from portal.public import bp
from portal.public.forms import SearchForm
from portal.services.appeals import (
    CHANNELS,
    PublicClip,
    channel_of,
    get_public_agency,
    get_public_appeal,
    get_public_rendition,
    list_public_appeals,
    public_clips,
)
from portal.services.errors import NotFound

# Pages anyone may keep for a minute (a reverse proxy absorbs a spike); a withdrawn
# appeal leaves caches within that time.
PAGE_CACHE = "public, max-age=60"


def _cacheable(body: str, status: int = 200) -> BaseResponse:
    response = make_response(body, status)
    response.headers["Cache-Control"] = PAGE_CACHE
    response.add_etag()
    return response.make_conditional(request)


def _listing(template: str, **context: object) -> BaseResponse:
    form = SearchForm(request.args)
    query = form.q.data if form.validate() else ""
    listing = list_public_appeals(query=query or "", **context)  # type: ignore[arg-type]
    status = 200 if not form.errors else 400
    return _cacheable(render_template(template, listing=listing, form=form, **context), status)


@bp.route("/")
def index() -> BaseResponse:
    return _listing("public/index.html")


@bp.route("/agencies/<slug>")
def agency_page(slug: str) -> BaseResponse:
    try:
        agency = get_public_agency(slug)
    except NotFound:
        abort(404)
    return _listing("public/agency.html", agency=agency)


@bp.route("/appeals/<appeal_id>")
def appeal_page(appeal_id: str) -> BaseResponse:
    try:
        appeal = get_public_appeal(appeal_id)
    except NotFound:
        abort(404)
    via = channel_of(request.args.get("via"))
    body = render_template(
        "public/appeal.html",
        appeal=appeal,
        clips=public_clips(appeal),
        via=via,
        canonical=url_for("public.appeal_page", appeal_id=appeal.public_id, _external=True),
    )
    # The page differs by ?via= only in the links it carries onward (the tip form's
    # channel); caches key on the full URL, so each variant is cached on its own.
    return _cacheable(body)


@bp.route("/appeals.atom")
def feed() -> BaseResponse:
    listing = list_public_appeals(limit=50)
    appeals = [*listing.this_week, *listing.open, *listing.solved]
    appeals.sort(key=lambda a: a.published_at or a.created_at, reverse=True)
    response = _cacheable(render_template("public/feed.xml", appeals=appeals))
    response.mimetype = "application/atom+xml"
    return response


@bp.route("/media/<appeal_id>/<version_id>/<name>")
def appeal_media(appeal_id: str, version_id: str, name: str) -> BaseResponse:
    try:
        rendition = get_public_rendition(appeal_id, version_id, name)
    except NotFound:
        abort(404)
    return serve_published_rendition(rendition)


@bp.app_template_global()
def public_media_url(appeal_id: str, rendition: Rendition) -> str:
    return url_for(
        "public.appeal_media",
        appeal_id=appeal_id,
        version_id=rendition.version.public_id,
        name=rendition.name,
    )


@bp.app_template_global()
def channel_names() -> dict[str, str]:
    return CHANNELS


@bp.app_template_global()
def appeal_clips(appeal: Appeal) -> list[PublicClip]:
    return public_clips(appeal)


@bp.app_template_global()
def now_utc() -> datetime:
    return utcnow()
