"""What dragging a backlog appeal onto a slot relies on, over HTTP: the calendar marks
each empty slot with the fill form it opens and each backlog appeal with its id, and
the fill form opened with ``appeal=`` ticks the dropped appeals instead of the
suggestion (an appeal that cannot be picked is ignored)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from portal.models import Agency, Appeal, Role, User
from tests.portal.publishing.plan_helpers import social_appeal

Login = Callable[[User], FlaskClient]


def _appeal(agency: Agency, users: dict[Role, User], number: str, title: str) -> Appeal:
    return social_appeal(
        agency, users[Role.OFFICER], users[Role.SUPERVISOR], number=number, title=title
    )


def _ticked(page: str) -> set[str]:
    boxes = re.findall(r'<input[^>]*name="appeals"[^>]*>', page)
    return {re.search(r'value="([^"]+)"', b).group(1) for b in boxes if "checked" in b}  # type: ignore[union-attr]


def test_calendar_marks_empty_slots_as_drop_targets_and_backlog_appeals_as_draggable(
    app: Flask, agency: Agency, users: dict[Role, User], signed_in: Login
) -> None:
    appeal = _appeal(agency, users, "27-1", "Who took the bike?")
    page = signed_in(users[Role.COORDINATOR]).get("/staff/schedule").get_data(as_text=True)
    slots = re.findall(r'data-slot="([^"]+)"\s+data-drop-url="([^"]+)"', page)
    assert slots, "no empty slot offers itself as a drop target"
    for slot_at, url in slots:
        assert html.unescape(url) == f"/staff/schedule/fill?slot={slot_at.replace('+', '%2B')}"
    assert f'data-appeal="{appeal.public_id}"' in page
    assert 'src="/static/js/schedule-drag.js"' in page
    # The hint is for those whose browser runs the script: hidden until it does.
    assert re.search(r"data-drag-hint hidden", page)


def test_fill_form_opened_by_a_drop_ticks_the_dropped_appeal_not_the_suggestion(
    app: Flask, agency: Agency, users: dict[Role, User], signed_in: Login
) -> None:
    suggested = _appeal(agency, users, "27-1", "The oldest case, suggested")
    dropped = _appeal(agency, users, "27-2", "The one dragged")
    client = signed_in(users[Role.COORDINATOR])
    plain = client.get("/staff/schedule/fill").get_data(as_text=True)
    assert _ticked(plain) == {suggested.public_id}
    page = client.get(f"/staff/schedule/fill?appeal={dropped.public_id}").get_data(as_text=True)
    assert _ticked(page) == {dropped.public_id}
    # An id that is not a pickable appeal (another agency's, made up) is ignored.
    page = client.get("/staff/schedule/fill?appeal=nope").get_data(as_text=True)
    assert _ticked(page) == {suggested.public_id}
