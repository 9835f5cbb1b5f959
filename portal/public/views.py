"""The public site: appeals, agency pages, search, the appeal page, the feed, and
the published media. Every view here is anonymous: nothing records who asks.

Everything a visitor reads here is translated (portal/i18n.py: ``?lang=`` or the
browser's language); staff pages are English only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from flask import abort, current_app, make_response, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response as BaseResponse

from portal.extensions import csrf, db
from portal.http import ratelimit, tus
from portal.http.bodies import accepts_files, streams_body
from portal.http.media import PublishedMedia, published_media_url, serve_published_rendition
from portal.http.proof import check_proof
from portal.i18n import LANG_PARAMETER, current_language, languages
from portal.models import Agency, Appeal, Rendition, Tip, TipAttachment
from portal.models.appeals import DEFAULT_QUESTION
from portal.models.base import utcnow
from portal.public import bp
from portal.public.forms import AttachmentFields, ReceiptCheckForm, ReplyForm, SearchForm, TipForm
from portal.services import attachments, public_cache
from portal.services.appeals import (
    CHANNELS,
    PublicClip,
    channel_of,
    get_public_agency,
    get_public_appeal,
    get_public_appeal_and_clips,
    get_public_rendition,
    list_public_appeals,
    public_clips,
)
from portal.services.challenges import ProofRejected, issue_challenge, required_bits
from portal.services.errors import NotFound, ValidationFailed
from portal.services.outcomes import count_page_view
from portal.services.tips import (
    Receipt,
    TipInput,
    TipTarget,
    add_tipster_message,
    decoy_receipt,
    open_tip,
    submit_tip_to,
    thread_token,
    tip_from_thread_token,
    with_a_free_number,
)

# Pages anyone may keep for a minute (a reverse proxy absorbs a spike); a withdrawn
# appeal leaves caches within that time.
PAGE_CACHE = "public, max-age=60"
T = TypeVar("T")


def _cacheable(body: str, status: int = 200) -> BaseResponse:
    response = make_response(body, status)
    response.headers["Cache-Control"] = PAGE_CACHE
    response.add_etag()
    return response.make_conditional(request)


def _own_address(*parameters: str) -> bool:
    """The request's query is one this site links to: only ``parameters``, each once,
    with a value the site itself uses. Only such pages are kept
    (portal/services/public_cache.py): the page carries its query on (in its language
    links), so a page kept for an address of a visitor's making would show it to the
    next one."""
    for name, values in request.args.lists():
        if name not in parameters or len(values) != 1:
            return False
        value = values[0]
        if name == "via" and value not in CHANNELS:
            return False
        if name == LANG_PARAMETER and value not in languages():
            return False
    return True


def _kept_page(kind: str, build: Callable[[], T], *parameters: str) -> T:
    """``build()``, or the page this process kept for this address (and language)."""
    if not _own_address(*parameters):
        return build()
    key = (kind, request.host_url, request.full_path, current_language())
    return public_cache.cached(key, build)


def _listing(template: str, **context: object) -> BaseResponse:
    def build() -> tuple[str, int]:
        form = SearchForm(request.args)
        query = form.q.data if form.validate() else ""
        listing = list_public_appeals(query=query or "", **context)  # type: ignore[arg-type]
        status = 200 if not form.errors else 400
        return render_template(template, listing=listing, form=form, **context), status

    # A search is not kept: its address is the visitor's own words.
    return _cacheable(*_kept_page(template, build, LANG_PARAMETER))


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
    def build() -> tuple[int, str]:
        appeal, clips = get_public_appeal_and_clips(appeal_id)
        body = render_template(
            "public/appeal.html",
            appeal=appeal,
            clips=clips,
            via=channel_of(request.args.get("via")),
            canonical=url_for("public.appeal_page", appeal_id=appeal.public_id, _external=True),
        )
        return appeal.id, body

    try:
        # The page differs by ?via= only in the links it carries onward (the tip
        # form's channel); caches key on the full URL, so each variant is kept apart.
        appeal_pk, body = _kept_page("appeal", build, "via", LANG_PARAMETER)
    except NotFound:
        abort(404)
    count_page_view(appeal_pk)  # a daily total per appeal; nothing about the visitor
    return _cacheable(body)


@bp.route("/appeals.atom")
def feed() -> BaseResponse:
    def build() -> str:
        listing = list_public_appeals(limit=50)
        appeals = [*listing.this_week, *listing.open, *listing.solved]
        appeals.sort(key=lambda a: a.published_at or a.created_at, reverse=True)
        return render_template("public/feed.xml", appeals=appeals)

    response = _cacheable(_kept_page("feed", build, LANG_PARAMETER))
    response.mimetype = "application/atom+xml"
    return response


@bp.route("/media/<appeal_id>/<version_id>/<name>")
def appeal_media(appeal_id: str, version_id: str, name: str) -> BaseResponse:
    try:
        # What to send, kept with the appeal's pages: a player asks for the same
        # file in many ranges, and a viral appeal has many players.
        media = public_cache.cached(
            ("media", appeal_id, version_id, name),
            lambda: PublishedMedia.of(get_public_rendition(appeal_id, version_id, name)),
        )
    except NotFound:
        abort(404)
    return serve_published_rendition(media)


@bp.app_template_global()
def public_media_url(appeal_id: str, rendition: Rendition, clip: PublicClip) -> str:
    return published_media_url(appeal_id, rendition, copied=clip.copied)


@bp.app_template_global()
def channel_names() -> dict[str, str]:
    return CHANNELS


@bp.app_template_global()
def appeal_clips(appeal: Appeal) -> list[PublicClip]:
    return public_clips(appeal)


# The question as the portal offers it is the site's own words, so it is translated;
# a question staff wrote (like a title or summary) is shown as they wrote it.
TRANSLATED_DEFAULT_QUESTION = _l("Do you recognize this person?")


@bp.app_template_global()
def appeal_question(appeal: Appeal) -> str:
    if appeal.question == DEFAULT_QUESTION:
        return str(TRANSLATED_DEFAULT_QUESTION)
    return appeal.question


@bp.app_template_global()
def now_utc() -> datetime:
    return utcnow()


# -- tips --------------------------------------------------------------------------------
#
# The tip views are exempt from the app-wide CSRF check on purpose: the form checks
# its own token, so an expired token re-renders the form with what the tipster typed
# and a fresh token, instead of an error page that loses it.


def _private(body: str, status: int = 200) -> BaseResponse:
    response = make_response(body, status)
    # Nothing about a tip is ever kept by a browser's or a proxy's cache.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.context_processor
def proof_of_work_bits() -> dict[str, int]:
    return {"pow_bits": required_bits()}


def _with_challenge(form: TipForm | ReplyForm, purpose: str) -> None:
    """Every form shown carries a fresh challenge: one sent and refused (or spent)
    is never offered again."""
    form.pow_solution.data = ""
    form.pow_challenge.data = issue_challenge(purpose).token if required_bits() else ""


def _proof_refused(
    form: TipForm | ReplyForm, purpose: str, page: Callable[[int], BaseResponse]
) -> BaseResponse | None:
    """Check the form's proof of work. Refused (forged, replayed, expired), or over
    the stricter limit for forms sent without one: the form again (``page`` with a
    status), with a message and what was typed. Accepted: None."""
    try:
        wait = check_proof(purpose, form.pow_challenge.data or "", form.pow_solution.data or "")
    except ProofRejected as exc:
        form.form_errors.append(_("%(problem)s What you wrote is still here.", problem=exc.message))
        return page(400)
    if wait is None:
        return None
    _slow_down(form, wait)
    return _retry_after(page(429), wait)


def _tip_form_page(
    form: TipForm, *, agency: Agency, appeal: Appeal | None, status: int = 200
) -> BaseResponse:
    _with_challenge(form, "tip")
    files_url = None
    if attachments.resumable_files_offered():
        files_url = (
            url_for("public.appeal_tip_files", appeal_id=appeal.public_id)
            if appeal is not None
            else url_for("public.agency_tip_files", slug=agency.slug)
        )
    return _private(
        render_template(
            "public/tip_form.html",
            form=form,
            agency=agency,
            appeal=appeal,
            drafts=attachments.list_drafts(form.draft.data or ""),
            files_url=files_url,
            chunk_bytes=attachments.RESUMABLE_CHUNK_BYTES,
        ),
        status,
    )


def _too_large(agency: Agency, appeal: Appeal | None) -> BaseResponse:
    """A body over the form's limit is refused before a byte of it is read, so what
    was typed cannot be shown again: say so, and how to keep it (going back)."""
    settings = current_app.config["TATTLETALE"]
    form = TipForm(formdata=None)
    form.draft.data = attachments.new_draft_secret()
    form.form_errors.append(
        _(
            "The files together are larger than this form accepts (at most %(count)s files "
            "of %(size)s MB each), so nothing was sent. Go back to keep what you wrote, and "
            "choose fewer or smaller files.",
            count=settings.tip_attachments_max,
            size=settings.tip_attachment_max_bytes // 1024**2,
        )
    )
    return _tip_form_page(form, agency=agency, appeal=appeal, status=413)


def _stage_files(
    form: AttachmentFields, agency_id: int, reply_to: Tip | None = None
) -> attachments.Staged:
    """Keep this request's files as drafts of the form, whatever it answers: a form
    shown again (expired, refused, rate limited) still has them, and sending it takes
    them. Committed here for that reason. An answer's (``reply_to``) are bound to its
    tip, as those its page sends resumably are."""
    if attachments.draft_hash(form.draft.data or "") is None:
        form.draft.data = attachments.new_draft_secret()
    parts = [f.stream for f in request.files.getlist("files")]
    if all(part.is_empty_field for part in parts):  # type: ignore[attr-defined]
        # No file in this request (none chosen, or sent ahead by the uploader): nothing
        # to stage, and no commit.
        return attachments.Staged([])
    staged = attachments.stage_parts(
        parts,  # type: ignore[arg-type]
        agency_id=agency_id,
        draft_secret=_draft_of(form, reply_to),
    )
    attachments.keep_drafts()
    return staged


def _draft_of(form: AttachmentFields, reply_to: Tip | None) -> str:
    """The secret the form's files are drafts of: the form's own, or for an answer,
    the form's bound to the tip its receipt session opened."""
    secret = form.draft.data or ""
    return attachments.reply_draft_secret(reply_to, secret) if reply_to is not None else secret


def _slow_down(form: FlaskForm, wait: int) -> None:
    form.form_errors.append(
        _(
            "Too many attempts from here. Please wait %(seconds)s seconds and send it again; "
            "what you wrote is still here.",
            seconds=wait,
        )
    )


def _retry_after(response: BaseResponse, wait: int) -> BaseResponse:
    response.headers["Retry-After"] = str(wait)
    return response


def _validate_keeping_text(form: FlaskForm) -> bool:
    """Validate; an expired or missing CSRF token becomes a message on the form, which
    is shown again with what was typed and a fresh token."""
    if form.validate():
        return True
    if form.csrf_token.errors:
        form.csrf_token.errors = []
        form.form_errors.append(
            _("This form had expired. What you wrote is still here: please send it again.")
        )
    return False


Place = Callable[[], tuple[Agency, Appeal | None]]


def _take_tip(form: TipForm, *, target: TipTarget, place: Place) -> BaseResponse:
    """The tip form: shown (GET), or a tip taken for ``target``. ``place`` loads the
    agency and appeal the form page shows, only when a page is shown: a tip that is
    taken needs only where it goes (kept per appeal by portal/services/public_cache.py)."""

    def page(status: int = 200) -> BaseResponse:
        agency, appeal = place()
        return _tip_form_page(form, agency=agency, appeal=appeal, status=status)

    if request.method == "GET":
        form.via.data = channel_of(request.args.get("via"))
        form.draft.data = attachments.new_draft_secret()
        return page()
    staged = _stage_files(form, target.agency_id)
    if (wait := ratelimit.count_public("tips")) is not None:
        form.validate()  # the fields' own messages, with the text kept
        _slow_down(form, wait)
        return _retry_after(page(429), wait)
    if not _validate_keeping_text(form):
        return page(400)
    if form.website.data:
        # A bot filled in the hidden field: answer like a success, keep nothing.
        attachments.discard_drafts(form.draft.data or "")
        db.session.commit()
        return _private(
            render_template("public/receipt.html", receipt=decoy_receipt(), attachments=[])
        )
    if not staged.ok:
        # Too many, too large, no room: said plainly, with the text and the files kept.
        form.form_errors.extend(staged.problems)
        return page(422)
    if (refused := _proof_refused(form, "tip", page)) is not None:
        return refused
    tip_input = TipInput(
        body=form.body.data or "",
        seen_when=form.seen_when.data or "",
        name=form.name.data or "",
        phone=form.phone.data or "",
        email=form.email.data or "",
        notify_by_email=bool(form.notify_by_email.data),
        via=form.via.data or "",
        language=str(get_locale() or "en"),
    )

    def take() -> tuple[Receipt, list[TipAttachment]]:
        tip, receipt = submit_tip_to(tip_input, target)
        return receipt, attachments.take_drafts(tip, form.draft.data or "")

    try:
        # (The drafts were committed by _stage_files; the tip and the spent proof are
        # committed together.)
        receipt, files = with_a_free_number(take)
        db.session.commit()
    except ValidationFailed as exc:
        db.session.rollback()
        getattr(form, exc.field or "body", form.body).errors = [exc.message]
        return page(422)
    return _private(render_template("public/receipt.html", receipt=receipt, attachments=files))


def _appeal_target(appeal_id: str) -> TipTarget:
    appeal = get_public_appeal(appeal_id)
    return TipTarget.of(appeal.agency, appeal)


def _appeal_place(appeal_id: str) -> Place:
    def place() -> tuple[Agency, Appeal | None]:
        try:
            appeal = get_public_appeal(appeal_id)
        except NotFound:  # withdrawn since its target was kept
            abort(404)
        return appeal.agency, appeal

    return place


@bp.route("/appeals/<appeal_id>/tip", methods=["GET", "POST"])
@csrf.exempt
@accepts_files(attachments.form_body_limit, attachments.open_part)
def appeal_tip(appeal_id: str) -> BaseResponse:
    try:
        # Where its tips go, kept with the appeal's pages (and gone with them).
        target = public_cache.cached(("tip-target", appeal_id), lambda: _appeal_target(appeal_id))
    except NotFound:
        abort(404)
    place = _appeal_place(appeal_id)
    try:
        form = TipForm()
    except RequestEntityTooLarge:
        return _too_large(*place())
    return _take_tip(form, target=target, place=place)


@bp.route("/agencies/<slug>/tip", methods=["GET", "POST"])
@csrf.exempt
@accepts_files(attachments.form_body_limit, attachments.open_part)
def agency_tip(slug: str) -> BaseResponse:
    try:
        agency = get_public_agency(slug)
    except NotFound:
        abort(404)
    try:
        form = TipForm()
    except RequestEntityTooLarge:
        return _too_large(agency, None)
    return _take_tip(form, target=TipTarget.of(agency), place=lambda: (agency, None))


# -- a tip form's files, one by one and resumable (tus; with JavaScript) -----------------
#
# Exempt from the CSRF check like the forms: each request carries the form's draft
# secret in a header (portal/http/tus.py), which another site can neither read nor
# send without a CORS preflight this site never grants.


@bp.route("/appeals/<appeal_id>/tip/files", methods=["OPTIONS", "POST"])
@csrf.exempt
def appeal_tip_files(appeal_id: str) -> BaseResponse:
    if request.method == "OPTIONS":
        return tus.tip_options()
    try:
        appeal = get_public_appeal(appeal_id)
    except NotFound:
        abort(404)
    return tus.tip_create(appeal.agency, "public.tip_file")


@bp.route("/agencies/<slug>/tip/files", methods=["OPTIONS", "POST"])
@csrf.exempt
def agency_tip_files(slug: str) -> BaseResponse:
    if request.method == "OPTIONS":
        return tus.tip_options()
    try:
        agency = get_public_agency(slug)
    except NotFound:
        abort(404)
    return tus.tip_create(agency, "public.tip_file")


@bp.route("/tips/reply/files", methods=["OPTIONS", "POST"])
@csrf.exempt
def tip_reply_files() -> BaseResponse:
    """An answer's files, one by one (the thread's reply form, with JavaScript): only
    with the tip's receipt session, whose tip they are bound to."""
    if request.method == "OPTIONS":
        return tus.tip_options()
    try:
        tip, draft = _reply_files_draft()
    except NotFound as exc:
        return tus.tip_refused(exc)
    return tus.tip_create(tip.agency, "public.tip_file", draft)


def _reply_files_draft() -> tuple[Tip, str]:
    tip = tip_from_thread_token(request.headers.get(tus.TIP_THREAD_HEADER, ""))
    secret = request.headers.get(tus.TIP_DRAFT_HEADER, "")
    return tip, attachments.reply_draft_secret(tip, secret)


@bp.route("/tip-files/<file_id>", methods=["HEAD", "PATCH", "DELETE"])
@csrf.exempt
@streams_body(["PATCH"])
def tip_file(file_id: str) -> BaseResponse:
    draft = None  # a tip form's file: its draft secret is the header's
    if tus.TIP_THREAD_HEADER in request.headers:
        try:
            draft = _reply_files_draft()[1]
        except NotFound as exc:
            return tus.tip_refused(exc, head=request.method == "HEAD")
    if request.method == "PATCH":
        return tus.tip_patch(file_id, draft)
    if request.method == "DELETE":
        return tus.tip_delete(file_id, draft)
    return tus.tip_head(file_id, draft)


def _thread_page(tip: Tip, form: ReplyForm | None = None, status: int = 200) -> BaseResponse:
    form = form or ReplyForm(formdata=None)
    form.token.data = thread_token(tip)
    _with_challenge(form, "reply")
    if attachments.draft_hash(form.draft.data or "") is None:
        form.draft.data = attachments.new_draft_secret()
    files_url = url_for("public.tip_reply_files") if attachments.resumable_files_offered() else None
    body = render_template(
        "public/tip_thread.html",
        tip=tip,
        form=form,
        drafts=attachments.list_drafts(_draft_of(form, tip)),
        files_url=files_url,
        chunk_bytes=attachments.RESUMABLE_CHUNK_BYTES,
    )
    return _private(body, status)


@bp.route("/tips/check", methods=["GET", "POST"])
@csrf.exempt
def tip_check() -> BaseResponse:
    form = ReceiptCheckForm()
    if request.method == "POST":
        if (wait := ratelimit.count_public("receipts")) is not None:
            _slow_down(form, wait)
            page = _private(render_template("public/tip_check.html", form=form), 429)
            return _retry_after(page, wait)
        if form.validate():
            try:
                tip = open_tip(form.number.data or "", form.passphrase.data or "")
            except NotFound as exc:
                form.form_errors.append(exc.message)
            else:
                return _thread_page(tip)
        elif form.csrf_token.errors:
            form.csrf_token.errors = []
            form.form_errors.append(_("This form had expired. Please enter your receipt again."))
        return _private(render_template("public/tip_check.html", form=form), 400)
    return _private(render_template("public/tip_check.html", form=form))


@bp.route("/tips/reply", methods=["POST"])
@csrf.exempt
@accepts_files(attachments.form_body_limit, attachments.open_part)
def tip_reply() -> BaseResponse:
    form = ReplyForm()
    wait = ratelimit.count_public("receipts")
    try:
        tip = tip_from_thread_token(form.token.data or "")
    except NotFound as exc:
        check = ReceiptCheckForm(formdata=None)
        check.form_errors.append(exc.message)
        return _private(render_template("public/tip_check.html", form=check), 400)
    staged = _stage_files(form, tip.agency_id, reply_to=tip)
    if wait is not None:
        _slow_down(form, wait)
        return _retry_after(_thread_page(tip, form, 429), wait)
    if not _validate_keeping_text(form):
        return _thread_page(tip, form, 400)
    if not staged.ok:
        form.form_errors.extend(staged.problems)
        return _thread_page(tip, form, 422)
    if (refused := _proof_refused(form, "reply", lambda s: _thread_page(tip, form, s))) is not None:
        return refused
    try:
        message = add_tipster_message(tip, form.body.data or "")
        attachments.take_drafts(tip, _draft_of(form, tip), message)
        db.session.commit()
    except ValidationFailed as exc:
        db.session.rollback()
        form.body.errors = [exc.message]
        return _thread_page(tip, form, 422)
    db.session.refresh(tip)
    response = _thread_page(tip, ReplyForm(formdata=None))
    return response
