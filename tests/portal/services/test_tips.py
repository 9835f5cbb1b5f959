"""Tips from the public: the form, the receipt, the conversation, and the rule that a
tipster leaves no trace."""

from __future__ import annotations

import logging
import os
import re
import uuid
from dataclasses import replace

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from portal import create_app
from portal.extensions import db
from portal.models import Agency, Appeal, AppealStatus, Role, Tip, TipMessage, User, UserRole
from portal.services.appeals import withdraw_appeal
from portal.services.cases import assign_detective
from portal.services.errors import PermissionDenied
from portal.services.tips import (
    PASSPHRASE_WORDS,
    TipInput,
    add_staff_message,
    open_tip,
    submit_tip,
    wordlist,
)
from tests.conftest import IsolatedClient
from tests.portal.conftest import listed_appeal, proof_fields

TIPSTER_ADDRESS = "203.0.113.77"


@pytest.fixture
def appeal(agency: Agency, users: dict[Role, User]) -> Appeal:
    appeal = listed_appeal(
        agency,
        users[Role.OFFICER],
        users[Role.SUPERVISOR],
        number="T-100",
        title="Who is this man?",
    )
    assign_detective(appeal.case, users[Role.DETECTIVE], actor=users[Role.OFFICER])
    db.session.commit()
    return appeal


def form_token(client: FlaskClient, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def send_tip(client: FlaskClient, appeal: Appeal, **fields: str):  # type: ignore[no-untyped-def]
    """Send the tip form as a browser with JavaScript does: its proof of work solved."""
    path = f"/appeals/{appeal.public_id}/tip"
    page = client.get(path + "?via=facebook").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token, f"no CSRF token on {path}"
    data = {"csrf_token": token.group(1), "via": "facebook", "body": "That is my neighbour Snake."}
    data.update(proof_fields(page))
    data.update(fields)
    return client.post(path, data=data)


def receipt_of(html: str) -> tuple[str, str]:
    number = re.search(r'class="receipt-number">([^<]+)<', html)
    passphrase = re.search(r'class="receipt-passphrase">([^<]+)<', html)
    assert number and passphrase, html
    return number.group(1), passphrase.group(1)


def test_a_tip_without_files_reads_its_appeal_once(
    app: Flask, client: FlaskClient, appeal: Appeal
) -> None:
    # A viral appeal's tips arrive by the hundred a minute: where they go is kept with
    # the appeal's pages (the form page just shown kept it), so the form's answer
    # loads no appeal, and touches no attachment row when none was sent.
    path = f"/appeals/{appeal.public_id}/tip"
    page = client.get(path + "?via=facebook").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token
    data = {"csrf_token": token.group(1), "via": "facebook", "body": "He lives on Elm Street."}
    data.update(proof_fields(page))
    statements: list[str] = []

    def record(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(" ".join(statement.split()))

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        answer = client.post(path, data=data)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    assert answer.status_code == 200 and "receipt-passphrase" in answer.get_data(as_text=True)
    appeal_reads = [s for s in statements if re.match(r"SELECT .* FROM appeals\b", s)]
    assert appeal_reads == []
    assert not [s for s in statements if "count(tip_attachments.id)" in s]
    # Withdrawn, the appeal takes no more tips, kept or not.
    withdraw_appeal(appeal, None, "Suspect identified.")
    db.session.commit()
    assert client.post(path, data=data).status_code == 404


def test_tip_from_an_appeal_is_saved_with_its_channel_and_a_receipt(
    client: FlaskClient, appeal: Appeal
) -> None:
    response = send_tip(client, appeal, seen_when="Yesterday at 6 pm")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    number, passphrase = receipt_of(response.get_data(as_text=True))
    words = passphrase.split()
    assert len(words) == PASSPHRASE_WORDS and all(w in wordlist() for w in words)
    tip = db.session.scalars(sa.select(Tip)).one()
    assert tip.number == number
    assert (tip.appeal_id, tip.case_id, tip.agency_id) == (
        appeal.id,
        appeal.case_id,
        appeal.agency_id,
    )
    assert tip.channel == "facebook"
    assert tip.seen_when == "Yesterday at 6 pm"
    assert tip.is_anonymous
    # The passphrase is nowhere in the database, not even hashed without a key.
    assert passphrase not in dump_database()
    assert tip.receipt_hash not in (passphrase, number)


def test_tip_receipt_numbers_and_passphrases_differ_every_time(app: Flask, agency: Agency) -> None:
    receipts = [submit_tip(TipInput(body="x"), agency=agency)[1] for _ in range(20)]
    assert len({r.number for r in receipts}) == 20
    assert len({r.passphrase for r in receipts}) == 20
    # 7 words of 7,776: about 90 bits, more than the 80 the receipt must have.
    assert len(wordlist()) ** PASSPHRASE_WORDS > 2**80


def test_tip_contact_details_are_encrypted_at_rest(app: Flask, agency: Agency) -> None:
    tip, _ = submit_tip(
        TipInput(
            body="I know him.",
            name="Marge Bouvier",
            phone="+1 (555) 010-0199",
            email="marge@example.com",
            notify_by_email=True,
        ),
        agency=agency,
    )
    db.session.commit()
    raw = db.session.execute(
        sa.text("SELECT contact_name, contact_phone, contact_email FROM tips")
    ).one()
    assert not any(value in " ".join(raw) for value in ("Marge", "555", "marge@"))
    db.session.expire_all()
    again = db.session.get(Tip, tip.id)
    assert again is not None
    assert (again.contact_name, again.contact_phone, again.contact_email) == (
        "Marge Bouvier",
        "+1 (555) 010-0199",
        "marge@example.com",
    )
    assert again.notify_by_email


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"body": ""}, "What you know is required"),
        ({"body": "   \n  "}, "What you know is required"),
        ({"body": "x" * 10_001}, "at most 10000"),
        ({"body": "bad\x00byte"}, "NUL"),
        ({"body": "ok", "email": "not-an-address"}, "e-mail address is not valid"),
        ({"body": "ok", "notify_by_email": "y"}, "Give an e-mail address"),
        ({"body": "ok", "phone": "call me maybe"}, "digits only"),
    ],
)
def test_tip_form_refuses_bad_input_and_keeps_what_was_typed(
    client: FlaskClient, appeal: Appeal, fields: dict[str, str], message: str
) -> None:
    response = send_tip(client, appeal, seen_when="Tuesday", **fields)
    assert response.status_code in (400, 422)
    html = response.get_data(as_text=True)
    assert message in html
    assert 'value="Tuesday"' in html  # nothing typed is lost
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Tip)) == 0


def test_tip_form_with_an_expired_token_shows_the_text_again(
    client: FlaskClient, appeal: Appeal
) -> None:
    form_token(client, f"/appeals/{appeal.public_id}/tip")  # the visitor has a session
    response = client.post(
        f"/appeals/{appeal.public_id}/tip",
        data={"csrf_token": "expired-or-forged", "body": "He drives a red Honda."},
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "He drives a red Honda." in html
    assert "This form had expired" in html
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Tip)) == 0
    # The page carries a fresh token: sending again works.
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert token
    again = client.post(
        f"/appeals/{appeal.public_id}/tip",
        data={"csrf_token": token.group(1), "body": "He drives a red Honda."},
    )
    assert again.status_code == 200
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Tip)) == 1


def test_tip_form_honeypot_answers_like_success_and_keeps_nothing(
    client: FlaskClient, appeal: Appeal
) -> None:
    response = send_tip(client, appeal, website="http://spam.example")
    assert response.status_code == 200
    receipt_of(response.get_data(as_text=True))
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Tip)) == 0


def test_tip_form_of_an_unpublished_appeal_is_not_found(
    client: FlaskClient, appeal: Appeal
) -> None:
    appeal.status = AppealStatus.WITHDRAWN.value
    db.session.commit()
    assert client.get(f"/appeals/{appeal.public_id}/tip").status_code == 404
    assert client.post(f"/appeals/{appeal.public_id}/tip", data={"body": "x"}).status_code == 404


def test_general_tip_goes_to_the_agency_without_a_case(client: FlaskClient, agency: Agency) -> None:
    path = f"/agencies/{agency.slug}/tip"
    response = client.post(
        path, data={"csrf_token": form_token(client, path), "body": "Drugs sold at the park."}
    )
    assert response.status_code == 200
    tip = db.session.scalars(sa.select(Tip)).one()
    assert (tip.agency_id, tip.case_id, tip.appeal_id, tip.channel) == (
        agency.id,
        None,
        None,
        "web",
    )


def test_receipt_opens_the_thread_where_the_tipster_answers_a_detective(
    client: FlaskClient, appeal: Appeal, users: dict[Role, User]
) -> None:
    number, passphrase = receipt_of(send_tip(client, appeal).get_data(as_text=True))
    tip = db.session.scalars(sa.select(Tip)).one()
    add_staff_message(tip, users[Role.DETECTIVE], "Where does he live? <b>Street name</b>?")
    db.session.commit()

    # Written down by hand: other case, hyphens, spaces, the number without dashes.
    typed_number = number.replace("-", " ").lower()
    typed_passphrase = "  " + "-".join(passphrase.split()).upper() + " "
    response = client.post(
        "/tips/check",
        data={
            "csrf_token": form_token(client, "/tips/check"),
            "number": typed_number,
            "passphrase": typed_passphrase,
        },
    )
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    assert "A detective wrote" in html
    # Plain text, never HTML.
    assert "&lt;b&gt;Street name&lt;/b&gt;" in html and "<b>Street name</b>" not in html
    token = re.search(r'name="token" type="hidden" value="([^"]+)"', html)
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert token and csrf
    response = client.post(
        "/tips/reply",
        data={"csrf_token": csrf.group(1), "token": token.group(1), "body": "Evergreen Terrace."},
    )
    assert response.status_code == 200
    assert "Evergreen Terrace." in response.get_data(as_text=True)
    messages = db.session.scalars(sa.select(TipMessage).order_by(TipMessage.id)).all()
    assert [(m.author, m.author_user_id) for m in messages] == [
        ("staff", users[Role.DETECTIVE].id),
        ("tipster", None),
    ]
    db.session.refresh(tip)
    assert tip.last_tipster_message_at is not None


def test_wrong_receipt_gets_one_answer_whatever_is_wrong(
    client: FlaskClient, appeal: Appeal
) -> None:
    number, passphrase = receipt_of(send_tip(client, appeal).get_data(as_text=True))
    answers = []
    for typed_number, typed_passphrase in [
        (number, "wrong words entirely here now ok yes"),
        ("T-ZZZZZ-ZZZZZ", passphrase),
        ("not a number", passphrase),
        ("", ""),
    ]:
        response = client.post(
            "/tips/check",
            data={
                "csrf_token": form_token(client, "/tips/check"),
                "number": typed_number,
                "passphrase": typed_passphrase,
            },
        )
        body = re.sub(r'value="[^"]*"', "", response.get_data(as_text=True))
        answers.append((response.status_code, body))
    assert {status for status, _ in answers} == {400}
    assert len({body for _, body in answers[:3]}) == 1
    assert "do not match a tip" in answers[0][1]


def test_reply_with_a_forged_thread_token_is_refused(client: FlaskClient, appeal: Appeal) -> None:
    send_tip(client, appeal)
    response = client.post(
        "/tips/reply",
        data={"csrf_token": form_token(client, "/tips/check"), "token": "forged", "body": "hi"},
    )
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(TipMessage)) == 0


def test_staff_message_needs_the_tips_case(
    app: Flask,
    appeal: Appeal,
    users: dict[Role, User],
    make_user,  # type: ignore[no-untyped-def]
) -> None:
    tip, _ = submit_tip(TipInput(body="x"), agency=appeal.agency, appeal=appeal)
    db.session.commit()
    outsider_detective = make_user(Role.DETECTIVE)  # same agency, not on the case
    with pytest.raises(PermissionDenied):
        add_staff_message(tip, outsider_detective, "Hello?")
    with pytest.raises(PermissionDenied):
        add_staff_message(tip, users[Role.OFFICER], "Hello?")


def test_open_tip_is_not_fooled_by_a_number_alone(app: Flask, agency: Agency) -> None:
    tip, receipt = submit_tip(TipInput(body="x"), agency=agency)
    db.session.commit()
    assert open_tip(receipt.number, receipt.passphrase).id == tip.id
    with pytest.raises(Exception, match="do not match"):
        open_tip(receipt.number, "")


def dump_database() -> str:
    """Every value of every table, as text."""
    parts = []
    for table in db.metadata.sorted_tables:
        for row in db.session.execute(sa.select(table)).all():
            parts.extend(str(value) for value in row)
    return "\n".join(parts)


REDIS_URL = os.environ.get("TATTLETALE_TEST_REDIS_URL", "")


@pytest.mark.parametrize("limits", ["memory", "redis"])
def test_public_requests_leave_no_client_address_anywhere(  # type: ignore[no-untyped-def]
    settings, password_hash: str, caplog, capfd, limits: str
) -> None:
    # Behind one trusted proxy, so the address is the distinctive one we send; with the
    # rate limits on the real Redis, whose keys and values are searched too.
    prefix = f"tt-test-{uuid.uuid4().hex}"
    if limits == "redis":
        if not REDIS_URL:
            pytest.skip("TATTLETALE_TEST_REDIS_URL is not set")
        settings = replace(settings, redis_url=REDIS_URL, rate_limit_key_prefix=prefix)
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
        appeal = listed_appeal(agency, staff, staff, number="P-1", title="Privacy")
        client = app.test_client()
        headers = {
            "X-Forwarded-For": TIPSTER_ADDRESS,
            "User-Agent": "TipsterPhone/1.0",
            "Referer": "https://facebook.example/post/1",
        }
        for path in (
            "/",
            f"/appeals/{appeal.public_id}?via=facebook",
            "/appeals.atom",
            "/agencies/springfield",
            "/nowhere",
            "/tips/check",
        ):
            client.get(path, headers=headers)
        page = client.get(f"/appeals/{appeal.public_id}/tip", headers=headers)
        token = re.search(
            r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True)
        )
        assert token
        sent = client.post(
            f"/appeals/{appeal.public_id}/tip",
            headers=headers,
            data={"csrf_token": token.group(1), "body": "He is my cousin."},
        )
        assert sent.status_code == 200
        number, passphrase = receipt_of(sent.get_data(as_text=True))
        client.post(
            "/tips/check",
            headers=headers,
            data={"csrf_token": token.group(1), "number": number, "passphrase": passphrase},
        )
        client.post(
            "/tips/check",
            headers=headers,
            data={"csrf_token": token.group(1), "number": number, "passphrase": "wrong"},
        )
        stored = dump_database()
        db.session.remove()
        db.engine.dispose()
    if limits == "redis":
        import redis

        store = redis.Redis.from_url(REDIS_URL)
        keys = list(store.scan_iter(match=f"*{prefix}*"))
        assert keys, "the limits wrote nothing to Redis"
        for key in keys:
            stored += "\n" + key.decode(errors="replace")
            if store.type(key) == b"list":
                stored += "".join(v.decode(errors="replace") for v in store.lrange(key, 0, -1))
            elif store.type(key) == b"string":
                stored += (store.get(key) or b"").decode(errors="replace")
            elif store.type(key) == b"zset":
                stored += "".join(v.decode(errors="replace") for v in store.zrange(key, 0, -1))
    logged = caplog.text + "".join(capfd.readouterr())
    for trace in (TIPSTER_ADDRESS, "TipsterPhone", "facebook.example"):
        assert trace not in stored, trace
        assert trace not in logged, trace
    assert "He is my cousin." in stored  # the tip itself was stored


def test_tip_form_is_limited_per_client_and_keeps_what_was_typed(
    client: FlaskClient, appeal: Appeal
) -> None:
    # The default limit (TATTLETALE_RATELIMIT_TIPS): ten a minute from one client.
    for _ in range(10):
        assert send_tip(client, appeal).status_code == 200
    refused = send_tip(client, appeal, body="The eleventh tip, typed with care.")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    html = refused.get_data(as_text=True)
    assert "The eleventh tip, typed with care." in html
    assert "Too many attempts from here" in html
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Tip)) == 10


def test_receipt_guesses_are_limited_per_client(client: FlaskClient, appeal: Appeal) -> None:
    number, passphrase = receipt_of(send_tip(client, appeal).get_data(as_text=True))
    token = form_token(client, "/tips/check")
    for _ in range(10):
        wrong = client.post(
            "/tips/check",
            data={"csrf_token": token, "number": number, "passphrase": "guess " * 7},
        )
        assert wrong.status_code == 400
    # Even the right receipt waits now: guessing is what the limit stops.
    right = client.post(
        "/tips/check", data={"csrf_token": token, "number": number, "passphrase": passphrase}
    )
    assert right.status_code == 429
    assert "Too many attempts from here" in right.get_data(as_text=True)
