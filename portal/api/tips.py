"""API operations on tips: the queue, one tip, its triage and the conversation. The
same services as the staff pages (tip_queue, triage, tips)."""

from __future__ import annotations

from typing import Any

from flask import g

from portal.api import bp
from portal.api.authz import api_requires
from portal.api.docs import json_body, problems
from portal.api.schemas import (
    TipDetailSchema,
    TipListSchema,
    TipMessageCreateSchema,
    TipMessageSchema,
    TipPatchSchema,
    TipQuerySchema,
)
from portal.models import Tip, TipMessage
from portal.services.authz import Permission
from portal.services.tip_queue import TipQuery, is_overdue, list_queue, reply_waiting, unread_among
from portal.services.tips import add_staff_message, get_tip_for
from portal.services.triage import (
    TriageChange,
    add_note,
    notes_of,
    priority_name,
    tag_names,
    update_tip,
)

Body = Any


def _summary(tip: Tip, unread: frozenset[int]) -> dict[str, Any]:
    return {
        "id": tip.public_id,
        "number": tip.number,
        "case": tip.case.public_id if tip.case else None,
        "appeal": tip.appeal.public_id if tip.appeal else None,
        "channel": tip.channel,
        "status": tip.status,
        "priority": priority_name(tip),
        "assignee": tip.assignee.public_id if tip.assignee else None,
        "version": tip.version,
        "created_at": tip.created_at,
        "awaiting_since": tip.awaiting_since,
        "reply_waiting": reply_waiting(tip),
        "overdue": is_overdue(tip),
        "unread": tip.id in unread,
        "excerpt": tip.body[:200],
    }


def _message(message: TipMessage) -> dict[str, Any]:
    return {
        "author": message.author,
        "author_name": message.author_user.display_name if message.author_user else None,
        "body": message.body,
        "created_at": message.created_at,
    }


def _detail(tip: Tip) -> dict[str, Any]:
    body = _summary(tip, unread_among(g.api_user, [tip]))
    body.update(
        body=tip.body,
        seen_when=tip.seen_when,
        anonymous=tip.is_anonymous,
        tags=tag_names(tip),
        linked_case=tip.linked_case.public_id if tip.linked_case else None,
        duplicate_of=tip.duplicate_of.public_id if tip.duplicate_of else None,
        messages=[_message(m) for m in tip.messages],
        notes=[
            {"author": n.author.display_name, "body": n.body, "created_at": n.created_at}
            for n in notes_of(tip)
        ],
    )
    return body


@bp.route("/tips", methods=["GET"])
@bp.doc(operationId="listTips")
@api_requires(Permission.TIP_TRIAGE)
@bp.arguments(TipQuerySchema, location="query")
@bp.response(200, TipListSchema, description="One page of the queue.")
@problems(422)
def get_tips(query: dict[str, Any]):
    """The tips the caller may triage: their cases' (a supervisor: the agency's) and
    the agency's general tips, filtered and in the order asked for."""
    after = query.pop("after", None)
    limit = query.pop("limit")
    page = list_queue(g.api_user, TipQuery(**query), after=after or None, limit=limit)
    return {"tips": [_summary(t, page.unread) for t in page.tips], "next": page.next_cursor}


@bp.route("/tips/<id:tip_id>", methods=["GET"])
@bp.doc(operationId="getTip")
@api_requires(Permission.TIP_TRIAGE)
@bp.response(200, TipDetailSchema)
@problems(404)
def get_tip(tip_id: str):
    """A tip with its conversation and internal notes (never the tipster's contact:
    that is revealed, audited, on the staff page)."""
    return _detail(get_tip_for(g.api_user, tip_id))


@bp.route("/tips/<id:tip_id>", methods=["PATCH"])
@bp.doc(operationId="updateTip")
@api_requires(Permission.TIP_TRIAGE)
@json_body(TipPatchSchema)
@bp.response(200, TipDetailSchema)
@problems(400, 404, 409, 422)
def patch_tip(read: Body, tip_id: str):
    """Triage a tip. 409 when it changed since ``version``: read it again."""
    tip = get_tip_for(g.api_user, tip_id)
    fields = read()

    def cleared(name: str) -> str | None:
        if name not in fields:
            return None
        return fields[name] or ""

    change = TriageChange(
        status=fields.get("status"),
        priority=fields.get("priority"),
        assignee=cleared("assignee"),
        tags=fields.get("tags"),
        linked_case=cleared("linked_case"),
        duplicate_of=cleared("duplicate_of"),
    )
    update_tip(tip, g.api_user, change, version=fields["version"])
    if fields.get("note"):
        add_note(tip, g.api_user, fields["note"])
    return _detail(tip)


@bp.route("/tips/<id:tip_id>/messages", methods=["POST"])
@bp.doc(operationId="createTipMessage")
@api_requires(Permission.TIP_TRIAGE)
@json_body(TipMessageCreateSchema)
@bp.response(201, TipMessageSchema)
@problems(400, 404, 422)
def post_tip_message(read: Body, tip_id: str):
    """Write to the tipster; they read it with their receipt."""
    tip = get_tip_for(g.api_user, tip_id)
    message = add_staff_message(tip, g.api_user, read()["body"])
    return _message(message), 201
