"""The caption editor's live preview endpoint: the template as typed, written out, cut
and counted by the server exactly as the page's Preview button (and preflight) does,
as JSON for the page's script; it saves nothing and takes the form's CSRF token."""

from __future__ import annotations

import html
from collections.abc import Callable

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import Agency, Role, User
from portal.publishing.caption_models import CaptionTemplate
from tests.portal.conftest import csrf_token

Login = Callable[[User], FlaskClient]
PAGE = "/staff/schedule/captions/{network}"
LIVE = "/staff/schedule/captions/{network}/preview"


def _live(client: FlaskClient, network: str, **data: str) -> tuple[int, dict[str, object]]:
    token = csrf_token(client, PAGE.format(network=network))
    response = client.post(LIVE.format(network=network), data={"csrf_token": token, **data})
    assert response.is_json, response.get_data(as_text=True)[:200]
    return response.status_code, response.get_json()


def test_live_preview_counts_a_link_as_mastodon_does_and_saves_nothing(
    app: Flask, agency: Agency, users: dict[Role, User], signed_in: Login
) -> None:
    client = signed_in(users[Role.ADMIN])
    status, answer = _live(
        client, "mastodon", item="{title} {tip_url}", closing="{hashtags}", hashtags="#Springfield"
    )
    assert status == 200
    # Sample title (39) + " " + link (23, however long) + "\n\n" + "#Springfield" (12).
    assert answer["length"] == 77 and answer["limit"] == 500
    assert answer["count"] == "77 / 500"
    assert answer["fits"] is True and answer["warning"] == "" and answer["problems"] == {}
    text = str(answer["text"])
    assert text.startswith("Man wanted for a robbery on Main Street https://")
    assert text.endswith("\n\n#Springfield")
    assert db.session.scalars(sa.select(CaptionTemplate)).all() == []


def test_live_preview_says_what_the_preview_button_says(
    app: Flask, agency: Agency, users: dict[Role, User], signed_in: Login
) -> None:
    client = signed_in(users[Role.ADMIN])
    # Flags are two code points and one grapheme each: Bluesky counts graphemes, and
    # bytes besides; the titles are cut to make room.
    data = {"item": "{title} " + "\U0001f1fa\U0001f1f8" * 200 + " {tip_url}"}
    data |= {"closing": "{hashtags}", "hashtags": "#Springfield"}
    _, answer = _live(client, "bluesky", **data)
    token = csrf_token(client, PAGE.format(network="bluesky"))
    page = client.post(
        PAGE.format(network="bluesky"), data={"csrf_token": token, "preview": "1", **data}
    ).get_data(as_text=True)
    shown = html.unescape(page.split("data-caption>")[1].split("</pre>")[0])
    assert shown == answer["text"]
    assert f"<span data-count>{answer['count']}</span>" in page
    assert answer["limit"] == 300 and answer["byte_limit"] == 3000
    assert str(answer["count"]).startswith(f"{answer['length']} / 300, ")
    assert str(answer["count"]).endswith(" bytes · shortened to fit")
    assert answer["cut"] is True and answer["fits"] is True


def test_live_preview_of_a_template_too_long_says_by_how_much(
    app: Flask, agency: Agency, users: dict[Role, User], signed_in: Login
) -> None:
    client = signed_in(users[Role.ADMIN])
    _, answer = _live(client, "x", item="x" * 300 + " {tip_url}", closing="", hashtags="")
    # 300 + 1 + 23 (t.co) = 324 against X's 280: the literal text is never cut.
    assert answer["length"] == 324 and answer["fits"] is False
    assert answer["warning"] == (
        "Too long by 44 even with the summary and title cut: shorten the template."
    )


def test_live_preview_lists_the_templates_problems(
    app: Flask, agency: Agency, users: dict[Role, User], signed_in: Login
) -> None:
    client = signed_in(users[Role.ADMIN])
    status, answer = _live(client, "x", item="{colour}", closing="", hashtags="")
    assert status == 200
    assert answer["problems"] == {
        "item": [
            "{colour} is not a field here (fields: {case_number}, {title}, {summary}, "
            "{when}, {where}, {tip_url})",
            "the template must contain {tip_url}",
        ]
    }


def test_live_preview_needs_the_csrf_token_and_a_known_network(
    app: Flask, agency: Agency, users: dict[Role, User], signed_in: Login
) -> None:
    client = signed_in(users[Role.ADMIN])
    data = {"item": "{tip_url}", "closing": "", "hashtags": ""}
    refused = client.post(LIVE.format(network="x"), data=data)
    assert refused.status_code == 400 and not refused.is_json
    token = csrf_token(client, PAGE.format(network="x"))
    unknown = client.post(LIVE.format(network="myspace"), data={"csrf_token": token, **data})
    assert unknown.status_code == 404


def test_live_preview_is_for_those_who_edit_the_templates(
    app: Flask, agency: Agency, users: dict[Role, User], signed_in: Login
) -> None:
    client = signed_in(users[Role.COORDINATOR])
    token = csrf_token(client, "/staff/schedule")
    data = {"csrf_token": token, "item": "{tip_url}", "closing": "", "hashtags": ""}
    assert client.post(LIVE.format(network="x"), data=data).status_code == 403
