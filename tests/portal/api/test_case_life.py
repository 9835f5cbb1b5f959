"""POST /cases/{id}/solve and /status, GET /cases/{id}/history, through HTTP."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import Agency, Case, Role, Tip, User
from portal.services.cases import create_case
from portal.services.tips import TipInput, submit_tip
from portal.services.users import create_api_token
from tests.portal.conftest import listed_appeal


@pytest.fixture
def tokens(users: dict[Role, User]) -> dict[Role, dict[str, str]]:
    result = {}
    for role, user in users.items():
        _, secret = create_api_token(user)
        result[role] = {"Authorization": f"Bearer {secret}"}
    db.session.commit()
    return result


def tip_of(case: Case) -> Tip:
    tip, _ = submit_tip(TipInput(body="He lives on Evergreen Terrace."), agency=case.agency)
    tip.case_id = case.id
    db.session.commit()
    return tip


def test_api_solve_case_then_the_public_listing_thanks_everyone(
    client: FlaskClient, agency: Agency, users: dict[Role, User], tokens
) -> None:  # type: ignore[no-untyped-def]
    appeal = listed_appeal(
        agency, users[Role.OFFICER], users[Role.SUPERVISOR], number="A-9", title="Shoplifting"
    )
    case = appeal.case
    tip = tip_of(case)
    assert "Solved — thank you" not in client.get("/").get_data(as_text=True)
    response = client.post(
        f"/api/v1/cases/{case.public_id}/solve",
        json={"reason": "Named by a tipster.", "tips_led": True, "tips": [tip.public_id]},
        headers=tokens[Role.OFFICER],
    )
    assert response.status_code == 200, response.json
    assert response.json["status"] == "solved"
    [change] = response.json["history"]
    assert change["from_status"] == "open" and change["tips"] == [tip.public_id]
    assert change["changed_by"] == users[Role.OFFICER].public_id
    assert "Solved — thank you" in client.get("/").get_data(as_text=True)

    again = client.post(
        f"/api/v1/cases/{case.public_id}/solve",
        json={"reason": "twice", "tips_led": False},
        headers=tokens[Role.OFFICER],
    )
    assert again.status_code == 409 and again.json["field"] == "status"
    reopened = client.post(
        f"/api/v1/cases/{case.public_id}/status",
        json={"status": "reopened", "reason": "Charges dropped."},
        headers=tokens[Role.OFFICER],
    )
    assert reopened.status_code == 200 and reopened.json["status"] == "reopened"
    history = client.get(f"/api/v1/cases/{case.public_id}/history", headers=tokens[Role.OFFICER])
    assert [h["to_status"] for h in history.json["history"]] == ["solved", "reopened"]


def test_api_solve_refuses_a_tip_of_another_case(
    client: FlaskClient, case: Case, agency: Agency, users: dict[Role, User], tokens
) -> None:  # type: ignore[no-untyped-def]
    other = create_case(agency, number="24-0002", title="Other", created_by=users[Role.OFFICER])
    db.session.commit()
    foreign = tip_of(other)
    response = client.post(
        f"/api/v1/cases/{case.public_id}/solve",
        json={"reason": "x", "tips_led": True, "tips": [foreign.public_id]},
        headers=tokens[Role.DETECTIVE],
    )
    assert response.status_code == 422 and response.json["field"] == "tips"
    db.session.refresh(case)
    assert case.status == "open"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tips_led": False}, "reason"),
        ({"reason": "", "tips_led": False}, "reason"),
        ({"reason": "x"}, "tips_led"),
        ({"reason": "x", "tips_led": "yes"}, "tips_led"),
        ({"reason": "x", "tips_led": False, "colour": "red"}, "colour"),
        ({"reason": "x", "tips_led": False, "tips": "abc"}, "tips"),
    ],
)
def test_api_solve_bad_input_names_the_field(
    client: FlaskClient, case: Case, tokens, body, field
) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        f"/api/v1/cases/{case.public_id}/solve", json=body, headers=tokens[Role.DETECTIVE]
    )
    assert response.status_code == 422 and response.json["field"] == field


def test_api_status_refuses_an_illegal_transition_and_solving(
    client: FlaskClient, case: Case, tokens
) -> None:  # type: ignore[no-untyped-def]
    reopen = client.post(
        f"/api/v1/cases/{case.public_id}/status",
        json={"status": "reopened", "reason": "x"},
        headers=tokens[Role.DETECTIVE],
    )
    assert reopen.status_code == 409  # an open case is not reopened
    solve = client.post(
        f"/api/v1/cases/{case.public_id}/status",
        json={"status": "solved", "reason": "x"},
        headers=tokens[Role.DETECTIVE],
    )
    assert solve.status_code == 422 and solve.json["field"] == "status"


def test_api_patch_no_longer_changes_the_status(client: FlaskClient, case: Case, tokens) -> None:  # type: ignore[no-untyped-def]
    response = client.patch(
        f"/api/v1/cases/{case.public_id}", json={"status": "solved"}, headers=tokens[Role.OFFICER]
    )
    assert response.status_code == 422 and response.json["field"] == "status"


def test_api_case_life_authorization_by_hand(
    client: FlaskClient, case: Case, other_agency: Agency, make_user, tokens
) -> None:  # type: ignore[no-untyped-def]
    # role -> (history, solve, status): 200 allowed, 403 the permission is missing,
    # 404 the case is not theirs. Written out, not derived from ROLE_PERMISSIONS.
    expected = {
        Role.OFFICER: (200, 200, 200),  # the case's creator
        Role.DETECTIVE: (200, 200, 200),  # assigned to it
        Role.SUPERVISOR: (200, 403, 403),
        Role.COORDINATOR: (200, 403, 403),
        Role.ADMIN: (200, 403, 403),
    }
    outsider = make_user(Role.DETECTIVE)
    stranger = make_user(Role.OFFICER, agency_=other_agency)
    extra = {}
    for name, user in (("outsider", outsider), ("stranger", stranger)):
        _, secret = create_api_token(user)
        extra[name] = {"Authorization": f"Bearer {secret}"}
    db.session.commit()
    for who, headers in (*tokens.items(), *extra.items()):
        want = expected.get(who, (404, 404, 404))  # type: ignore[call-overload]
        base = f"/api/v1/cases/{case.public_id}"
        got_history = client.get(f"{base}/history", headers=headers).status_code
        # Closing then reopening, so the next role finds the case open again.
        got_status = client.post(
            f"{base}/status", json={"status": "closed", "reason": "x"}, headers=headers
        ).status_code
        if got_status == 200:
            client.post(
                f"{base}/status", json={"status": "reopened", "reason": "x"}, headers=headers
            )
        got_solve = client.post(
            f"{base}/solve", json={"reason": "x", "tips_led": False}, headers=headers
        ).status_code
        if got_solve == 200:
            client.post(
                f"{base}/status", json={"status": "reopened", "reason": "x"}, headers=headers
            )
        assert (got_history, got_solve, got_status) == want, who
    assert client.post(f"/api/v1/cases/{case.public_id}/solve", json={}).status_code == 401
