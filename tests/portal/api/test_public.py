"""The public API: published appeals, tips with their receipt, the tip's thread with
the passphrase in a header, and the staff's publication of an appeal. Every bad
input a caller can send answers a problem document."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from portal import create_app
from portal.extensions import db
from portal.models import (
    Agency,
    Appeal,
    AppealStatus,
    AuditEvent,
    Case,
    Role,
    Tip,
    TipMessage,
    User,
    UserRole,
)
from portal.services.cases import create_case
from portal.services.tips import PASSPHRASE_WORDS, WRONG_RECEIPT, add_staff_message, wordlist
from portal.services.users import create_api_token
from tests.conftest import IsolatedClient
from tests.portal.conftest import listed_appeal, solve_challenge
from tests.portal.services.test_tips import TIPSTER_ADDRESS, dump_database

PROBLEM = "application/problem+json"


@pytest.fixture
def appeal(agency: Agency, users: dict[Role, User]) -> Appeal:
    return listed_appeal(
        agency,
        users[Role.OFFICER],
        users[Role.SUPERVISOR],
        number="24-0100",
        title="Who is this man?",
        offense="Burglary",
        place="742 Evergreen Terrace",
    )


def proof(client: FlaskClient, purpose: str = "tip") -> dict[str, str]:
    """The X-Proof-Of-Work header of a client that did the work."""
    challenge = client.get(f"/api/v1/public/challenges?purpose={purpose}").json
    assert challenge["algorithm"] == "sha256-leading-zero-bits"
    token = challenge["challenge"]
    return {"X-Proof-Of-Work": f"{token}:{solve_challenge(token, challenge['bits'])}"}


def tip_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Tip)) or 0


def send(client: FlaskClient, appeal: Appeal, body: object, **headers: str):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/v1/public/appeals/{appeal.public_id}/tips",
        json=body,
        headers={**proof(client), **headers},
    )


# -- appeals --------------------------------------------------------------------------


def test_public_appeals_list_needs_no_token_and_is_cacheable(
    client: FlaskClient, appeal: Appeal, agency: Agency, users: dict[Role, User]
) -> None:
    listed_appeal(
        agency,
        users[Role.OFFICER],
        users[Role.SUPERVISOR],
        number="24-0101",
        title="A draft",
        status=AppealStatus.DRAFT,
    )
    response = client.get("/api/v1/public/appeals")
    assert response.status_code == 200
    listed = [a["id"] for part in ("this_week", "open", "solved") for a in response.json[part]]
    assert listed == [appeal.public_id]  # the draft is not there
    first = response.json["this_week"][0]
    assert first["title"] == "Who is this man?"
    assert first["case_number"] == "24-0100"
    assert first["agency"] == {"slug": "springfield", "name": "Springfield Police Department"}
    assert first["url"] == f"/appeals/{appeal.public_id}"
    assert response.headers["Cache-Control"] == "public, max-age=60"
    again = client.get(
        "/api/v1/public/appeals", headers={"If-None-Match": response.headers["ETag"]}
    )
    assert again.status_code == 304
    assert "Set-Cookie" not in response.headers


def test_public_appeals_search_by_place_and_agency(client: FlaskClient, appeal: Appeal) -> None:
    found = client.get("/api/v1/public/appeals?q=evergreen&agency=springfield").json
    assert [a["id"] for a in found["this_week"]] == [appeal.public_id]
    assert client.get("/api/v1/public/appeals?q=shelbyville").json["this_week"] == []
    unknown = client.get("/api/v1/public/appeals?agency=nowhere")
    assert unknown.status_code == 404 and unknown.mimetype == PROBLEM


@pytest.mark.parametrize(
    ("query", "field"),
    [("q=" + "x" * 101, "q"), ("q=a%00b", "q"), ("agency=" + "s" * 65, "agency")],
)
def test_public_appeals_refuse_bad_queries(client: FlaskClient, query: str, field: str) -> None:
    response = client.get(f"/api/v1/public/appeals?{query}")
    assert response.status_code == 422
    assert response.mimetype == PROBLEM
    assert response.json["field"] == field


def test_public_appeal_has_its_clips_with_the_sites_media_urls(
    client: FlaskClient, appeal: Appeal
) -> None:
    response = client.get(f"/api/v1/public/appeals/{appeal.public_id}")
    assert response.status_code == 200
    body = response.json
    version = appeal.clips[0].version.public_id
    assert body["question"] == "Do you recognize this person?"
    assert body["clips"] == [
        {
            "version": version,
            "duration_s": 75.0,
            "poster_url": f"/media/{appeal.public_id}/{version}/poster",
            "videos": [
                {
                    "name": "web_720",
                    "url": f"/media/{appeal.public_id}/{version}/web_720",
                    "width": 1280,
                    "height": 720,
                    "content_type": "video/mp4",
                }
            ],
        }
    ]


@pytest.mark.parametrize("status", [AppealStatus.DRAFT, AppealStatus.WITHDRAWN])
def test_unpublished_appeal_answers_exactly_like_a_missing_one(
    client: FlaskClient, appeal: Appeal, status: AppealStatus
) -> None:
    appeal.status = status.value
    db.session.commit()
    hidden = client.get(f"/api/v1/public/appeals/{appeal.public_id}")
    missing = client.get("/api/v1/public/appeals/no-such-appeal-id")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json == missing.json
    assert hidden.mimetype == PROBLEM
    tip = client.post(
        f"/api/v1/public/appeals/{appeal.public_id}/tips", json={"body": "I know him."}
    )
    assert tip.status_code == 404 and tip.json == missing.json
    assert tip_count() == 0


# -- tips ------------------------------------------------------------------------------


def test_api_tip_returns_the_receipt_once_and_stores_only_its_hash(
    client: FlaskClient, appeal: Appeal
) -> None:
    response = send(client, appeal, {"body": "That is Snake.", "seen_when": "Friday", "via": "qr"})
    assert response.status_code == 201, response.json
    assert response.headers["Cache-Control"] == "no-store"
    receipt = response.json
    words = receipt["passphrase"].split()
    assert len(words) == PASSPHRASE_WORDS and all(w in wordlist() for w in words)
    assert receipt["messages"] == f"/api/v1/public/tips/{receipt['number']}/messages"
    tip = db.session.scalars(sa.select(Tip)).one()
    assert (tip.number, tip.appeal_id, tip.case_id) == (
        receipt["number"],
        appeal.id,
        appeal.case_id,
    )
    assert (tip.body, tip.seen_when, tip.channel) == ("That is Snake.", "Friday", "qr")
    assert receipt["passphrase"] not in (tip.receipt_hash, tip.body)


def test_api_general_tip_goes_to_the_named_agency(client: FlaskClient, agency: Agency) -> None:
    response = client.post(
        "/api/v1/public/tips",
        json={"agency": "springfield", "body": "Drugs sold at the park."},
        headers=proof(client),
    )
    assert response.status_code == 201
    tip = db.session.scalars(sa.select(Tip)).one()
    assert (tip.agency_id, tip.case_id, tip.appeal_id) == (agency.id, None, None)
    unknown = client.post(
        "/api/v1/public/tips", json={"agency": "atlantis", "body": "x"}, headers=proof(client)
    )
    assert unknown.status_code == 404 and unknown.mimetype == PROBLEM


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"body": ""}, "body"),
        ({"body": "  \n "}, "body"),
        ({"body": "x" * 10_001}, "body"),
        ({"body": "bad\x00byte"}, "body"),
        ({"body": "lone \udc80 surrogate"}, "body"),
        ({"body": 7}, "body"),
        ({"body": "ok", "email": "not-an-address"}, "email"),
        ({"body": "ok", "notify_by_email": True}, "email"),
        ({"body": "ok", "notify_by_email": "yes"}, "notify_by_email"),
        ({"body": "ok", "phone": "call me maybe"}, "phone"),
        ({"body": "ok", "name": "n" * 201}, "name"),
        ({"body": "ok", "seen_when": "line\nbreak"}, "seen_when"),
        ({"body": "ok", "website": "x"}, "website"),
        ([], "body"),
    ],
)
def test_api_tip_refuses_bad_input_with_the_field(
    client: FlaskClient, appeal: Appeal, body: object, field: str
) -> None:
    response = send(client, appeal, body)
    assert response.status_code == 422, response.json
    assert response.mimetype == PROBLEM
    assert response.json["field"] == field
    assert tip_count() == 0


def test_api_tip_refuses_a_body_that_is_not_json(client: FlaskClient, appeal: Appeal) -> None:
    path = f"/api/v1/public/appeals/{appeal.public_id}/tips"
    as_form = client.post(path, data={"body": "x"}, headers=proof(client))
    broken = client.post(
        path, data="{not json", content_type="application/json", headers=proof(client)
    )
    for response in (as_form, broken):
        assert response.status_code == 400 and response.mimetype == PROBLEM
    assert tip_count() == 0


# -- proof of work on the API ------------------------------------------------------------


def test_api_tip_proof_is_single_use(client: FlaskClient, appeal: Appeal) -> None:
    headers = proof(client)
    path = f"/api/v1/public/appeals/{appeal.public_id}/tips"
    assert client.post(path, json={"body": "first"}, headers=headers).status_code == 201
    replay = client.post(path, json={"body": "second"}, headers=headers)
    assert replay.status_code == 400
    assert replay.json["field"] == "X-Proof-Of-Work"
    assert "already sent" in replay.json["title"]
    assert tip_count() == 1


@pytest.mark.parametrize(
    "forge",
    [
        lambda token, counter: f"{token}:{int(counter) + 1}",  # not a solution
        lambda token, counter: f"{token[:-1]}{'0' if token[-1] != '0' else '1'}:{counter}",
        lambda token, counter: "reply" + token[3:] + ":" + counter,  # another purpose
        lambda token, counter: f"{token}",  # no counter
        lambda token, counter: f"{token}:-{counter}",
        lambda token, counter: "garbage:1",
    ],
)
def test_api_tip_refuses_a_forged_proof(client: FlaskClient, appeal: Appeal, forge) -> None:  # type: ignore[no-untyped-def]
    token, _, counter = proof(client)["X-Proof-Of-Work"].rpartition(":")
    response = client.post(
        f"/api/v1/public/appeals/{appeal.public_id}/tips",
        json={"body": "I know him."},
        headers={"X-Proof-Of-Work": forge(token, counter)},
    )
    assert response.status_code == 400
    assert response.mimetype == PROBLEM
    assert response.json["field"] == "X-Proof-Of-Work"
    assert tip_count() == 0


def test_api_tip_without_proof_gets_the_stricter_limit(client: FlaskClient, appeal: Appeal) -> None:
    path = f"/api/v1/public/appeals/{appeal.public_id}/tips"
    # TATTLETALE_RATELIMIT_UNPROVEN's default: three a minute without proof of work.
    for _ in range(3):
        assert client.post(path, json={"body": "No puzzle solved."}).status_code == 201
    refused = client.post(path, json={"body": "The fourth."})
    assert refused.status_code == 429
    assert refused.mimetype == PROBLEM
    assert int(refused.headers["Retry-After"]) > 0
    # With the work done, the same client still gets through.
    assert client.post(path, json={"body": "Solved."}, headers=proof(client)).status_code == 201
    assert tip_count() == 4


def test_api_tips_are_limited_per_client(client: FlaskClient, appeal: Appeal) -> None:
    # TATTLETALE_RATELIMIT_TIPS's default: ten a minute, with or without proof.
    for _ in range(10):
        assert send(client, appeal, {"body": "A tip."}).status_code == 201
    refused = send(client, appeal, {"body": "The eleventh."})
    assert refused.status_code == 429 and refused.mimetype == PROBLEM
    assert tip_count() == 10


# -- the thread ----------------------------------------------------------------------------


@pytest.fixture
def receipt(client: FlaskClient, appeal: Appeal) -> dict[str, str]:
    response = send(client, appeal, {"body": "That is Snake."})
    assert response.status_code == 201
    return response.json


def test_thread_with_the_passphrase_header_reads_and_answers(
    client: FlaskClient, receipt: dict[str, str], users: dict[Role, User]
) -> None:
    tip = db.session.scalars(sa.select(Tip)).one()
    add_staff_message(tip, users[Role.SUPERVISOR], "Where did you see him?")
    db.session.commit()
    path = f"/api/v1/public/tips/{receipt['number']}/messages"
    passphrase = {"X-Tip-Passphrase": receipt["passphrase"].upper()}  # forgiving, like the form
    thread = client.get(path, headers=passphrase)
    assert thread.status_code == 200
    assert thread.headers["Cache-Control"] == "no-store"
    assert thread.json["number"] == receipt["number"]
    assert [(m["author"], m["body"]) for m in thread.json["messages"]] == [
        ("staff", "Where did you see him?")
    ]
    answer = client.post(
        path,
        json={"body": "At the Kwik-E-Mart."},
        headers={**passphrase, **proof(client, "reply")},
    )
    assert answer.status_code == 201
    assert answer.json["author"] == "tipster"
    assert answer.json["body"] == "At the Kwik-E-Mart."
    assert db.session.scalars(sa.select(TipMessage.body).order_by(TipMessage.id)).all() == [
        "Where did you see him?",
        "At the Kwik-E-Mart.",
    ]


def test_wrong_receipt_answers_the_same_whether_the_tip_exists_or_not(
    client: FlaskClient, receipt: dict[str, str]
) -> None:
    answers = []
    for number, passphrase in (
        (receipt["number"], "wrong " * 7),  # the tip exists, the passphrase is wrong
        ("T-00000-00000", receipt["passphrase"]),  # no such tip
        ("not-a-number", receipt["passphrase"]),
    ):
        path = f"/api/v1/public/tips/{number}/messages"
        answers.append(client.get(path, headers={"X-Tip-Passphrase": passphrase}))
        answers.append(
            client.post(
                path,
                json={"body": "More."},
                headers={"X-Tip-Passphrase": passphrase, **proof(client, "reply")},
            )
        )
    for response in answers:
        assert response.status_code == 404
        assert response.json == {"type": "about:blank", "title": WRONG_RECEIPT, "status": 404}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(TipMessage)) == 0


def test_thread_refuses_a_missing_passphrase_header_and_bad_bodies(
    client: FlaskClient, receipt: dict[str, str]
) -> None:
    path = f"/api/v1/public/tips/{receipt['number']}/messages"
    missing = client.get(path)
    assert missing.status_code == 422 and missing.json["field"] == "X-Tip-Passphrase"
    too_long = client.get(path, headers={"X-Tip-Passphrase": "w" * 201})
    assert too_long.status_code == 422 and too_long.json["field"] == "X-Tip-Passphrase"
    headers = {"X-Tip-Passphrase": receipt["passphrase"]}
    for body in ({}, {"body": ""}, {"body": "x" * 5_001}, {"body": "a\x00"}, {"extra": 1}):
        response = client.post(path, json=body, headers={**headers, **proof(client, "reply")})
        assert response.status_code == 422, body
        assert response.mimetype == PROBLEM
    # A tip's challenge does not pay for a reply.
    wrong_purpose = client.post(path, json={"body": "More."}, headers={**headers, **proof(client)})
    assert wrong_purpose.status_code == 400
    assert db.session.scalar(sa.select(sa.func.count()).select_from(TipMessage)) == 0


def test_receipt_guesses_on_the_api_are_limited(
    client: FlaskClient, receipt: dict[str, str]
) -> None:
    path = f"/api/v1/public/tips/{receipt['number']}/messages"
    for _ in range(10):
        assert client.get(path, headers={"X-Tip-Passphrase": "guess"}).status_code == 404
    right = client.get(path, headers={"X-Tip-Passphrase": receipt["passphrase"]})
    assert right.status_code == 429 and right.mimetype == PROBLEM


def test_challenge_purpose_is_checked(client: FlaskClient) -> None:
    for query in ("", "?purpose=login", "?purpose=tip%00"):
        response = client.get(f"/api/v1/public/challenges{query}")
        assert response.status_code == 422 and response.json["field"] == "purpose"


# -- publication (staff) ------------------------------------------------------------------


def bearer(user: User) -> dict[str, str]:
    _, secret = create_api_token(user)
    db.session.commit()
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def draft(appeal: Appeal) -> Appeal:
    appeal.status = AppealStatus.DRAFT.value
    appeal.published_at = None
    db.session.commit()
    return appeal


def test_coordinator_publishes_and_withdraws_by_api(
    client: FlaskClient, draft: Appeal, users: dict[Role, User]
) -> None:
    headers = bearer(users[Role.COORDINATOR])
    path = f"/api/v1/appeals/{draft.public_id}/publication"
    assert client.get(f"/api/v1/public/appeals/{draft.public_id}").status_code == 404
    published = client.post(path, headers=headers)
    assert published.status_code == 201, published.json
    assert published.json["status"] == "published"
    assert published.headers["Location"] == f"/appeals/{draft.public_id}"
    assert client.get(f"/api/v1/public/appeals/{draft.public_id}").status_code == 200
    again = client.post(path, headers=headers)
    assert again.status_code == 409
    no_reason = client.delete(path, headers=headers, json={"reason": " "})
    assert no_reason.status_code == 422 and no_reason.json["field"] == "reason"
    withdrawn = client.delete(path, headers=headers, json={"reason": "He was arrested."})
    assert withdrawn.status_code == 204
    assert client.get(f"/api/v1/public/appeals/{draft.public_id}").status_code == 404
    actions = db.session.scalars(
        sa.select(AuditEvent.action).where(AuditEvent.object_id == draft.public_id)
    ).all()
    assert {"appeal.publish", "appeal.withdraw"} <= set(actions)


def test_publication_needs_the_permission_and_the_agency(
    client: FlaskClient,
    draft: Appeal,
    users: dict[Role, User],
    make_user,  # type: ignore[no-untyped-def]
    other_agency: Agency,
) -> None:
    path = f"/api/v1/appeals/{draft.public_id}/publication"
    assert client.post(path).status_code == 401
    # An officer of the case may not publish (APPEAL_PUBLISH is the coordinators' and
    # supervisors').
    assert client.post(path, headers=bearer(users[Role.OFFICER])).status_code == 403
    stranger = make_user(Role.COORDINATOR, agency_=other_agency)
    foreign = client.post(path, headers=bearer(stranger))
    assert foreign.status_code == 404  # another agency's appeal: not even there
    assert (
        client.post(
            "/api/v1/appeals/no-such-id/publication", headers=bearer(users[Role.COORDINATOR])
        ).status_code
        == 404
    )
    db.session.refresh(draft)
    assert draft.status == AppealStatus.DRAFT.value


def test_publication_refuses_an_appeal_whose_approval_no_longer_holds(
    client: FlaskClient, draft: Appeal, users: dict[Role, User]
) -> None:
    approval = draft.clips[0].version.active_approval
    assert approval is not None
    approval.renditions_digest = "0" * 64  # the stored renditions changed since
    db.session.commit()
    response = client.post(
        f"/api/v1/appeals/{draft.public_id}/publication", headers=bearer(users[Role.COORDINATOR])
    )
    assert response.status_code == 409
    assert "approve it again" in response.json["title"]


def test_publication_of_a_case_without_appeal_rows_is_not_found(
    client: FlaskClient, agency: Agency, users: dict[Role, User]
) -> None:
    case: Case = create_case(agency, number="24-0200", title="x", created_by=users[Role.OFFICER])
    db.session.commit()
    response = client.post(
        f"/api/v1/appeals/{case.public_id}/publication", headers=bearer(users[Role.COORDINATOR])
    )
    assert response.status_code == 404


# -- no trace -------------------------------------------------------------------------------


def test_public_api_leaves_no_client_address_in_database_or_logs(  # type: ignore[no-untyped-def]
    settings, password_hash: str, caplog, capfd
) -> None:
    # Behind one trusted proxy, so the address is the distinctive one sent.
    app = create_app(replace(settings, trusted_proxies=1))
    app.test_client_class = IsolatedClient
    caplog.set_level(logging.DEBUG)
    with app.app_context():
        agency = Agency(name="Springfield Police Department", slug="springfield")
        staff = User(
            agency=agency,
            email="staff@springfield.example",
            display_name="Staff",
            password_hash=password_hash,
            role_rows=[UserRole(role=Role.OFFICER.value), UserRole(role=Role.SUPERVISOR.value)],
        )
        db.session.add_all([agency, staff])
        db.session.commit()
        appeal = listed_appeal(agency, staff, staff, number="P-2", title="Privacy")
        client = app.test_client()
        headers = {
            "X-Forwarded-For": TIPSTER_ADDRESS,
            "User-Agent": "TipsterPhone/1.0",
            "Referer": "https://facebook.example/post/1",
        }
        client.get("/api/v1/public/appeals", headers=headers)
        client.get(f"/api/v1/public/appeals/{appeal.public_id}", headers=headers)
        client.get("/api/v1/public/appeals/nowhere", headers=headers)
        sent = client.post(
            f"/api/v1/public/appeals/{appeal.public_id}/tips",
            json={"body": "He is my cousin."},
            headers={**headers, **proof(client)},
        )
        assert sent.status_code == 201
        path = f"/api/v1/public/tips/{sent.json['number']}/messages"
        passphrase = {"X-Tip-Passphrase": sent.json["passphrase"]}
        client.get(path, headers={**headers, **passphrase})
        client.get(path, headers={**headers, "X-Tip-Passphrase": "wrong"})
        client.post(path, json={"body": "More."}, headers={**headers, **passphrase})
        stored = dump_database()
        db.session.remove()
        db.engine.dispose()
    # Every field of every record, not only the formatted line: the JSON format
    # writes the extra fields (path, status, client_addr for staff) too.
    fields = " ".join(str(value) for record in caplog.records for value in vars(record).values())
    logged = caplog.text + fields + "".join(capfd.readouterr())
    for trace in (TIPSTER_ADDRESS, "TipsterPhone", "facebook.example"):
        assert trace not in stored, trace
        assert trace not in logged, trace
    assert "He is my cousin." in stored and "More." in stored
    paths = [getattr(record, "path", None) for record in caplog.records]
    assert "/api/v1/public/appeals" in paths  # the requests were logged, without them
