"""The case's status page: history for whoever sees the case, the form (with CSRF)
for its members, every refusal a user can cause."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import Case, Role, User
from portal.services.tips import TipInput, submit_tip
from tests.portal.conftest import csrf_token, sign_in


def test_case_status_page_solves_with_tips_and_shows_the_history(
    client: FlaskClient,
    users: dict[Role, User],
    case: Case,
    signed_in: Callable[[User], FlaskClient],
) -> None:
    tip, _ = submit_tip(TipInput(body="Ask the barber."), agency=case.agency)
    tip.case_id = case.id
    db.session.commit()
    signed_in(users[Role.DETECTIVE])
    url = f"/staff/cases/{case.public_id}/status"
    page = client.get(url).get_data(as_text=True)
    assert tip.number in page and "no status change since" in page
    response = client.post(
        url,
        data={
            "csrf_token": csrf_token(client, url),
            "to_status": "solved",
            "seen_status": "open",
            "reason": "Barber <b>identified</b> him.",
            "tips_led": "y",
            "tips": [tip.public_id],
        },
    )
    assert response.status_code == 302
    db.session.refresh(case)
    assert case.status == "solved"
    page = client.get(url).get_data(as_text=True)
    assert "open → solved" in page and tip.number in page
    assert "Barber &lt;b&gt;identified&lt;/b&gt; him." in page  # text, never HTML


def test_case_status_form_refusals(
    client: FlaskClient,
    users: dict[Role, User],
    case: Case,
    signed_in: Callable[[User], FlaskClient],
) -> None:
    signed_in(users[Role.DETECTIVE])
    url = f"/staff/cases/{case.public_id}/status"
    token = csrf_token(client, url)
    no_csrf = client.post(url, data={"to_status": "closed", "reason": "x"})
    assert no_csrf.status_code == 400
    illegal = client.post(url, data={"csrf_token": token, "to_status": "reopened", "reason": "x"})
    assert illegal.status_code == 409
    no_reason = client.post(url, data={"csrf_token": token, "to_status": "closed", "reason": ""})
    assert no_reason.status_code == 400 and "Why" in no_reason.get_data(as_text=True)
    stale = client.post(
        url,
        data={"csrf_token": token, "to_status": "closed", "seen_status": "solved", "reason": "x"},
    )
    assert stale.status_code == 409 and "meanwhile" in stale.get_data(as_text=True)
    db.session.refresh(case)
    assert case.status == "open"


def test_case_status_routes_authorization_by_hand(
    app: Flask,
    users: dict[Role, User],
    case: Case,
    make_user,  # type: ignore[no-untyped-def]
) -> None:
    # role -> (GET page, POST change): written out by hand.
    expected = {
        Role.OFFICER: (200, 302),
        Role.DETECTIVE: (200, 302),
        Role.SUPERVISOR: (200, 403),
        Role.COORDINATOR: (200, 403),
        Role.ADMIN: (200, 403),
        "outsider detective": (404, 404),
    }
    outsider = make_user(Role.DETECTIVE)
    url = f"/staff/cases/{case.public_id}/status"
    for who, want in expected.items():
        user = outsider if who == "outsider detective" else users[who]  # type: ignore[index]
        client = app.test_client()
        assert sign_in(client, user.email).status_code == 302
        token = csrf_token(client, "/staff/")
        got_page = client.get(url).status_code
        got_post = client.post(
            url, data={"csrf_token": token, "to_status": "closed", "reason": "x"}
        ).status_code
        if got_post == 302:
            client.post(url, data={"csrf_token": token, "to_status": "reopened", "reason": "x"})
        assert (got_page, got_post) == want, who
