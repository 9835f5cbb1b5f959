"""The public API, for anyone: published appeals, sending a tip, and the tip's thread
with its receipt. The same services, limits and text rules as the site's forms.

These operations need no token, and their audience is public (portal/http/edge.py):
nothing records who calls them. Per-client limits key on the daily-rotating hash of
the address, like the forms. The receipt's passphrase travels in a header, never in
the URL, where proxies and logs would keep it.

Messages a visitor may read (a problem document's title and detail) follow the
caller's Accept-Language (portal/i18n.py); the machine-readable parts (status,
``field``, ``type``) are the same in every language.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import marshmallow as ma
from flask import Response, jsonify, make_response, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from portal.api import bp
from portal.api.docs import json_body, problems
from portal.api.schemas import (
    ChallengeQuerySchema,
    ChallengeSchema,
    GeneralTipCreateSchema,
    PublicAppealListSchema,
    PublicAppealQuerySchema,
    PublicAppealSchema,
    PublicTipMessageSchema,
    ReceiptSchema,
    TipCreateSchema,
    TipMessageCreateSchema,
    TipThreadSchema,
)
from portal.http import ratelimit
from portal.http.media import published_media_url
from portal.http.proof import check_proof
from portal.models import Agency, Appeal, CaseStatus, Tip, TipMessage
from portal.services.appeals import (
    PublicClip,
    get_public_agency,
    get_public_appeal,
    get_public_appeal_and_clips,
    list_public_appeals,
)
from portal.services.challenges import ALGORITHM, FORGED, ProofRejected, issue_challenge
from portal.services.text import clean_text
from portal.services.tips import (
    Receipt,
    TipInput,
    TipTarget,
    add_tipster_message,
    open_tip,
    submit_tip_to,
    with_a_free_number,
)

Body = Callable[[], dict[str, Any]]

PASSPHRASE_HEADER = "X-Tip-Passphrase"  # noqa: S105 (a header name, not a secret)
PROOF_HEADER = "X-Proof-Of-Work"
# Like the site's pages: a reverse proxy or CDN may keep them for a minute.
PAGE_CACHE = "public, max-age=60"

PASSPHRASE_PARAMETER = {
    "name": PASSPHRASE_HEADER,
    "in": "header",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    "description": "The receipt's passphrase (the seven words).",
}
PROOF_PARAMETER = {
    "name": PROOF_HEADER,
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": 300},
    "description": (
        "`<challenge>:<counter>`: a challenge from `GET /public/challenges` and a "
        "decimal counter such that SHA-256 of that whole value has the challenge's "
        "number of leading zero bits. Without it the stricter limit for clients "
        "without proof of work applies."
    ),
}

#: Operations anyone may call (checked by portal.api.authenticate_bearer).
PUBLIC_ENDPOINTS = frozenset(
    {
        "api.list_public_appeals",
        "api.get_public_appeal",
        "api.get_challenge",
        "api.post_appeal_tip",
        "api.post_general_tip",
        "api.get_public_tip_messages",
        "api.post_public_tip_message",
    }
)


def _cacheable(schema: type[ma.Schema], body: dict[str, Any]) -> BaseResponse:
    response = jsonify(schema().dump(body))
    response.headers["Cache-Control"] = PAGE_CACHE
    response.add_etag()
    return response.make_conditional(request)


def _private(schema: type[ma.Schema], body: dict[str, Any], status: int = 200) -> Response:
    response = make_response(jsonify(schema().dump(body)), status)
    # Nothing about a tip is kept by a browser's or a proxy's cache.
    response.headers["Cache-Control"] = "no-store"
    return response


def _summary(appeal: Appeal) -> dict[str, Any]:
    return {
        "id": appeal.public_id,
        "title": appeal.title,
        "question": appeal.question,
        "case_number": appeal.case.number,
        "offense": appeal.case.offense,
        "place": appeal.case.location_address,
        "agency": {"slug": appeal.agency.slug, "name": appeal.agency.name},
        "published_at": appeal.published_at,
        "solved": appeal.case.status == CaseStatus.SOLVED.value,
        "url": url_for("public.appeal_page", appeal_id=appeal.public_id),
    }


def _clip(appeal: Appeal, clip: PublicClip) -> dict[str, Any]:
    return {
        "version": clip.version.public_id,
        "duration_s": clip.duration_s,
        "poster_url": (
            published_media_url(appeal.public_id, clip.poster, copied=clip.copied)
            if clip.poster
            else None
        ),
        "videos": [
            {
                "name": video.name,
                "url": published_media_url(appeal.public_id, video, copied=clip.copied),
                "width": video.width,
                "height": video.height,
                "content_type": video.content_type,
            }
            for video in clip.videos
        ],
    }


@bp.route("/public/appeals", methods=["GET"], endpoint="list_public_appeals")
@bp.doc(operationId="listPublicAppeals", security=[])
@bp.arguments(PublicAppealQuerySchema, location="query")
@bp.response(200, PublicAppealListSchema, description="The site's listing.")
@problems(404, 422)
def list_public_appeals_view(query: dict[str, Any]):
    """Published appeals: this week's first, then every other open one, then solved."""
    agency = get_public_agency(query["agency"]) if query["agency"] else None
    listing = list_public_appeals(agency=agency, query=query["q"])
    return _cacheable(
        PublicAppealListSchema,
        {
            "this_week": [_summary(a) for a in listing.this_week],
            "open": [_summary(a) for a in listing.open],
            "solved": [_summary(a) for a in listing.solved],
        },
    )


@bp.route("/public/appeals/<id:appeal_id>", methods=["GET"], endpoint="get_public_appeal")
@bp.doc(operationId="getPublicAppeal", security=[])
@bp.response(200, PublicAppealSchema)
@problems(404)
def get_public_appeal_view(appeal_id: str):
    """A published appeal with its clips. Anything else answers 404, the same as an
    id that never existed."""
    appeal, clips = get_public_appeal_and_clips(appeal_id)
    body = _summary(appeal)
    body.update(
        summary=appeal.summary,
        occurred_at=appeal.case.occurred_at,
        clips=[_clip(appeal, clip) for clip in clips],
    )
    return _cacheable(PublicAppealSchema, body)


@bp.route("/public/challenges", methods=["GET"])
@bp.doc(operationId="getChallenge", security=[])
@bp.arguments(ChallengeQuerySchema, location="query")
@bp.response(200, ChallengeSchema, description="A proof-of-work challenge, signed.")
@problems(422)
def get_challenge(query: dict[str, Any]):
    """A fresh challenge for a tip (`purpose=tip`) or a reply (`purpose=reply`)."""
    challenge = issue_challenge(query["purpose"])
    return _private(
        ChallengeSchema,
        {
            "challenge": challenge.token,
            "bits": challenge.bits,
            "algorithm": ALGORITHM,
            "expires_at": challenge.expires_at,
        },
    )


def _refused_without_proof(purpose: str) -> Response | None:
    """Check the proof header: a bad proof raises ProofRejected (400, naming the
    header); without one, the stricter limit applies (the 429 it answers)."""
    value = request.headers.get(PROOF_HEADER, "")
    token, _sep, counter = value.rpartition(":")
    try:
        if value and not counter:
            raise ProofRejected(FORGED)
        wait = check_proof(purpose, token, counter)
    except ProofRejected as exc:
        raise ProofRejected(exc.message, field=PROOF_HEADER) from None
    if wait is None:
        return None
    return ratelimit.too_many_requests(wait, _("Too many sent without proof of work from here."))


def _receipt(receipt: Receipt) -> Response:
    return _private(
        ReceiptSchema,
        {
            "number": receipt.number,
            "passphrase": receipt.passphrase,
            "messages": url_for("api.get_public_tip_messages", number=receipt.number),
        },
        201,
    )


def _take_tip(fields: dict[str, Any], *, agency: Agency, appeal: Appeal | None) -> Response:
    if (refusal := _refused_without_proof("tip")) is not None:
        return refusal
    tip_input = TipInput(
        body=fields["body"],
        seen_when=fields.get("seen_when", ""),
        name=fields.get("name", ""),
        phone=fields.get("phone", ""),
        email=fields.get("email", ""),
        notify_by_email=fields.get("notify_by_email", False),
        via=fields.get("via", ""),
        language=str(get_locale() or "en"),
    )
    # (The request commits the tip, and the proof spent with it.)
    target = TipTarget.of(agency, appeal)
    _tip, receipt = with_a_free_number(lambda: submit_tip_to(tip_input, target))
    return _receipt(receipt)


TIP_DOC = {"parameters": [PROOF_PARAMETER]}


@bp.route("/public/appeals/<id:appeal_id>/tips", methods=["POST"])
@bp.doc(operationId="createAppealTip", security=[], **TIP_DOC)
@json_body(TipCreateSchema)
@bp.response(201, ReceiptSchema, description="The receipt: shown this once.")
@problems(400, 404, 422, 429)
def post_appeal_tip(read: Body, appeal_id: str):
    """Send a tip about a published appeal."""
    appeal = get_public_appeal(appeal_id)
    if (wait := ratelimit.count_public("tips")) is not None:
        return ratelimit.too_many_requests(wait, _("Too many tips from here."))
    return _take_tip(read(), agency=appeal.agency, appeal=appeal)


@bp.route("/public/tips", methods=["POST"])
@bp.doc(operationId="createPublicTip", security=[], **TIP_DOC)
@json_body(GeneralTipCreateSchema)
@bp.response(201, ReceiptSchema, description="The receipt: shown this once.")
@problems(400, 404, 422, 429)
def post_general_tip(read: Body):
    """Send a tip to an agency, about no appeal in particular."""
    if (wait := ratelimit.count_public("tips")) is not None:
        return ratelimit.too_many_requests(wait, _("Too many tips from here."))
    fields = read()
    agency = get_public_agency(fields.pop("agency"))
    return _take_tip(fields, agency=agency, appeal=None)


def _open_thread(number: str) -> Tip:
    """The tip of this receipt. The passphrase is checked through the same
    :func:`open_tip` as the site's form: one answer, and the same work, for an
    unknown number and a wrong passphrase."""
    passphrase = clean_text(
        request.headers.get(PASSPHRASE_HEADER, ""),
        field=PASSPHRASE_HEADER,
        max_length=200,
        required=True,
        label=_("The passphrase"),
    )
    return open_tip(number, passphrase)


def _message(message: TipMessage) -> dict[str, Any]:
    return {"author": message.author, "body": message.body, "created_at": message.created_at}


THREAD_DOC = {"parameters": [PASSPHRASE_PARAMETER]}


@bp.route("/public/tips/<id:number>/messages", methods=["GET"])
@bp.doc(operationId="getPublicTipMessages", security=[], **THREAD_DOC)
@bp.response(200, TipThreadSchema, description="The tip's conversation, oldest first.")
@problems(404, 422, 429)
def get_public_tip_messages(number: str):
    """Read the tip's thread: a detective's questions and the tipster's answers."""
    if (wait := ratelimit.count_public("receipts")) is not None:
        return ratelimit.too_many_requests(wait, _("Too many receipts tried from here."))
    tip = _open_thread(number)
    body = {"number": tip.number, "messages": [_message(m) for m in tip.messages]}
    return _private(TipThreadSchema, body)


@bp.route("/public/tips/<id:number>/messages", methods=["POST"])
@bp.doc(
    operationId="createPublicTipMessage",
    security=[],
    parameters=[PASSPHRASE_PARAMETER, PROOF_PARAMETER],
)
@json_body(TipMessageCreateSchema)
@bp.response(201, PublicTipMessageSchema, description="Added to the thread.")
@problems(400, 404, 422, 429)
def post_public_tip_message(read: Body, number: str):
    """Answer a detective, or add information."""
    if (wait := ratelimit.count_public("receipts")) is not None:
        return ratelimit.too_many_requests(wait, _("Too many receipts tried from here."))
    tip = _open_thread(number)
    fields = read()
    if (refusal := _refused_without_proof("reply")) is not None:
        return refusal
    message = add_tipster_message(tip, fields["body"])
    return _private(PublicTipMessageSchema, _message(message), 201)
