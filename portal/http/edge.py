"""Small helpers shared by the blueprints."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Response, jsonify, request

from portal.services.text import first_refused_char


def staff_client_addr() -> str | None:
    """The client address for the audit log of a staff or API request.

    Never called for public pages: a tipster's address is not recorded anywhere.
    """
    if request.blueprint not in ("staff", "api"):
        return None
    return request.remote_addr


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def problem(status: int, title: str, detail: str = "", **extra: Any) -> Response:
    """An RFC 9457 problem document."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def safe_next_url(target: str | None, default: str) -> str:
    """Only same-site staff paths: an attacker's ``?next=https://evil`` or
    ``//evil`` link must not turn our login page into a redirector. Nor may it hold
    any character the text rules refuse (portal/services/text.py): CR/LF would split
    the ``Location`` header, a lone surrogate cannot be encoded into one at all."""
    if not target or first_refused_char(target) is not None:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/staff/") or "\\" in target:
        return default
    return target
