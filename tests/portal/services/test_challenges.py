"""Proof of work: challenges signed by the server, bound to their purpose, expiring,
spent once (in the database, or in Redis when configured), and the tip and reply
forms that carry them, with and without JavaScript."""

from __future__ import annotations

import hashlib
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from config import Settings, load_settings
from portal import create_app
from portal.extensions import db
from portal.models import Agency, Appeal, Role, SpentChallenge, Tip, TipMessage, User, UserRole
from portal.services import challenges
from portal.services.challenges import ProofRejected, issue_challenge, verify_and_spend
from tests.conftest import IsolatedClient
from tests.portal.conftest import listed_appeal, proof_fields, solve_challenge

REDIS_URL = os.environ.get("TATTLETALE_TEST_REDIS_URL", "")


@pytest.fixture(params=["database", "redis"])
def spend_app(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Flask]:
    """The app with spent challenges in the database, or in the real Redis."""
    if request.param == "redis":
        if not REDIS_URL:
            pytest.skip("TATTLETALE_TEST_REDIS_URL is not set")
        settings = replace(
            settings, redis_url=REDIS_URL, rate_limit_key_prefix=f"tt-test-{uuid.uuid4().hex}"
        )
    app = create_app(settings)
    app.test_client_class = IsolatedClient
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def test_default_difficulty_and_lifetime_are_the_documented_ones() -> None:
    settings = load_settings({"TATTLETALE_ENV": "testing"})
    assert settings.proof_of_work_bits == 16
    assert settings.proof_of_work_max_age_s == 7200
    assert settings.rate_limit_unproven == "3 per minute;12 per hour"


def test_challenge_key_is_derived_from_the_secret_key_unless_given() -> None:
    one = load_settings({"TATTLETALE_ENV": "testing", "TATTLETALE_SECRET_KEY": "s" * 40})
    same = load_settings({"TATTLETALE_ENV": "testing", "TATTLETALE_SECRET_KEY": "s" * 40})
    other = load_settings({"TATTLETALE_ENV": "testing", "TATTLETALE_SECRET_KEY": "t" * 40})
    assert one.proof_of_work_key == same.proof_of_work_key != other.proof_of_work_key
    assert "s" * 40 not in one.proof_of_work_key
    given = load_settings({"TATTLETALE_ENV": "testing", "TATTLETALE_POW_KEY": "k" * 40})
    assert given.proof_of_work_key == "k" * 40


def test_a_challenge_solved_by_the_documented_algorithm_is_accepted_once(
    spend_app: Flask,
) -> None:
    challenge = issue_challenge("tip")
    assert challenge.bits == 16
    counter = solve_challenge(challenge.token, challenge.bits)
    digest = hashlib.sha256(f"{challenge.token}:{counter}".encode()).digest()
    assert int.from_bytes(digest[:2]) == 0  # 16 leading zero bits
    verify_and_spend("tip", challenge.token, counter)
    db.session.commit()
    with pytest.raises(ProofRejected, match="already sent"):
        verify_and_spend("tip", challenge.token, counter)


def test_the_spent_record_holds_only_the_nonce_and_its_expiry(app: Flask) -> None:
    challenge = issue_challenge("tip")
    verify_and_spend("tip", challenge.token, solve_challenge(challenge.token, challenge.bits))
    db.session.commit()
    record = db.session.scalars(sa.select(SpentChallenge)).one()
    assert record.nonce == challenge.token.split(".")[3]
    assert abs((record.expires_at - challenge.expires_at).total_seconds()) < 1
    assert {c.name for c in SpentChallenge.__table__.columns} == {"id", "nonce", "expires_at"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t, c: (t, str(int(c) + 1)), "not completed"),  # no solution
        (lambda t, c: (t.replace("tip.", "reply.", 1), c), "not valid"),  # another purpose
        (lambda t, c: (t[:-2] + ("00" if t[-2:] != "00" else "11"), c), "not valid"),
        (lambda t, c: (t.replace(".16.", ".1.", 1), c), "not valid"),  # easier, unsigned
        (lambda t, c: ("tip.1.2.3", c), "not valid"),
        (lambda t, c: (t, "1e5"), "not completed"),
        (lambda t, c: (t, "9" * 21), "not completed"),
    ],
)
def test_forged_proofs_are_refused(app: Flask, change, message: str) -> None:  # type: ignore[no-untyped-def]
    challenge = issue_challenge("tip")
    token, counter = change(challenge.token, solve_challenge(challenge.token, challenge.bits))
    with pytest.raises(ProofRejected, match=message):
        verify_and_spend("tip", token, counter)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SpentChallenge)) == 0


def test_a_challenge_is_bound_to_its_purpose(app: Flask) -> None:
    challenge = issue_challenge("tip")
    with pytest.raises(ProofRejected):
        verify_and_spend("reply", challenge.token, solve_challenge(challenge.token, 16))


def test_an_expired_challenge_is_refused(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    challenge = issue_challenge("tip")
    counter = solve_challenge(challenge.token, challenge.bits)
    later = time.time() + app.config["TATTLETALE"].proof_of_work_max_age_s + 1
    monkeypatch.setattr(challenges.time, "time", lambda: later)
    with pytest.raises(ProofRejected, match="expired"):
        verify_and_spend("tip", challenge.token, counter)


def test_spent_records_are_removed_once_their_challenge_expired(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = issue_challenge("tip")
    verify_and_spend("tip", old.token, solve_challenge(old.token, old.bits))
    db.session.commit()
    later = time.time() + app.config["TATTLETALE"].proof_of_work_max_age_s + 1
    monkeypatch.setattr(challenges.time, "time", lambda: later)
    monkeypatch.setattr(
        challenges, "utcnow", lambda: old.expires_at.replace(year=old.expires_at.year + 1)
    )
    new = issue_challenge("tip")
    verify_and_spend("tip", new.token, solve_challenge(new.token, new.bits))
    db.session.commit()
    nonces = db.session.scalars(sa.select(SpentChallenge.nonce)).all()
    assert nonces == [new.token.split(".")[3]]


# -- the forms ---------------------------------------------------------------------------


@pytest.fixture
def appeal(agency: Agency, users: dict[Role, User]) -> Appeal:
    return listed_appeal(
        agency, users[Role.OFFICER], users[Role.SUPERVISOR], number="24-0300", title="Who?"
    )


def tip_page(client: FlaskClient, appeal: Appeal) -> tuple[str, dict[str, str]]:
    html = client.get(f"/appeals/{appeal.public_id}/tip").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert token
    return html, {"csrf_token": token.group(1)}


def tips() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Tip)) or 0


def test_tip_form_carries_a_challenge_and_the_worker_script(
    client: FlaskClient, appeal: Appeal
) -> None:
    html, _ = tip_page(client, appeal)
    assert 'data-pow-bits="16"' in html
    assert re.search(
        r'name="pow_challenge" type="hidden" value="tip\.\d+\.16\.[0-9a-f]{32}\.', html
    )
    assert 'src="/static/js/proof-of-work.js" data-worker="/static/js/proof-worker.js"' in html
    assert "<script>" not in html  # nothing inline: the CSP allows none


@pytest.mark.parametrize("how", ["forged", "replayed", "expired"])
def test_tip_form_with_a_bad_proof_says_so_and_keeps_the_text(
    client: FlaskClient, appeal: Appeal, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = f"/appeals/{appeal.public_id}/tip"
    html, data = tip_page(client, appeal)
    proof = proof_fields(html)
    if how == "replayed":
        first = client.post(path, data={**data, **proof, "body": "The first, sent once."})
        assert first.status_code == 200
    elif how == "forged":
        proof["pow_solution"] = str(int(proof["pow_solution"]) + 1)
    else:
        later = time.time() + 7201
        monkeypatch.setattr(challenges.time, "time", lambda: later)
    sent = client.post(
        path, data={**data, **proof, "body": "He drives a red Honda.", "seen_when": "Monday"}
    )
    assert sent.status_code == 400
    page = sent.get_data(as_text=True)
    expected = {
        "forged": "anti-spam check of this form was not completed",
        "replayed": "This form was already sent once",
        "expired": "anti-spam check of this form has expired",
    }[how]
    assert expected in page
    assert "What you wrote is still here." in page
    assert "He drives a red Honda." in page and 'value="Monday"' in page
    # A fresh challenge to solve, not the refused one.
    again = proof_fields(page)
    assert again and again["pow_challenge"] != proof["pow_challenge"]
    assert tips() == (1 if how == "replayed" else 0)


def test_tip_form_without_javascript_works_under_a_stricter_limit(
    client: FlaskClient, appeal: Appeal
) -> None:
    path = f"/appeals/{appeal.public_id}/tip"
    # TATTLETALE_RATELIMIT_UNPROVEN's default: three a minute sent without the proof.
    for _ in range(3):
        _, data = tip_page(client, appeal)
        assert client.post(path, data={**data, "body": "No script here."}).status_code == 200
    html, data = tip_page(client, appeal)
    refused = client.post(path, data={**data, "body": "The fourth, typed by hand."})
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    page = refused.get_data(as_text=True)
    assert "Too many attempts from here" in page
    assert "The fourth, typed by hand." in page
    # The same client with the worker's solution is not held back by it.
    html, data = tip_page(client, appeal)
    solved = client.post(path, data={**data, **proof_fields(html), "body": "Solved."})
    assert solved.status_code == 200
    assert tips() == 4


def test_reply_form_checks_the_proof_and_keeps_the_text(
    client: FlaskClient, appeal: Appeal
) -> None:
    path = f"/appeals/{appeal.public_id}/tip"
    html, data = tip_page(client, appeal)
    sent = client.post(path, data={**data, **proof_fields(html), "body": "A tip."})
    receipt = sent.get_data(as_text=True)
    number = re.search(r'class="receipt-number">([^<]+)<', receipt)
    passphrase = re.search(r'class="receipt-passphrase">([^<]+)<', receipt)
    assert number and passphrase
    thread = client.post(
        "/tips/check",
        data={**data, "number": number.group(1), "passphrase": passphrase.group(1)},
    ).get_data(as_text=True)
    token = re.search(r'name="token" type="hidden" value="([^"]+)"', thread)
    assert token and 'data-pow-bits="16"' in thread
    proof = proof_fields(thread)
    reply = {**data, "token": token.group(1), **proof, "body": "He lives on Elm Street."}
    assert client.post("/tips/reply", data=reply).status_code == 200
    replayed = client.post("/tips/reply", data={**reply, "body": "And a blue van."})
    assert replayed.status_code == 400
    page = replayed.get_data(as_text=True)
    assert "This form was already sent once" in page and "And a blue van." in page
    bodies = db.session.scalars(sa.select(TipMessage.body)).all()
    assert bodies == ["He lives on Elm Street."]


def test_difficulty_zero_turns_proof_of_work_off(settings: Settings, password_hash: str) -> None:
    app = create_app(replace(settings, proof_of_work_bits=0))
    app.test_client_class = IsolatedClient
    with app.app_context():
        agency = Agency(name="Springfield Police Department", slug="springfield")
        staff = User(
            agency=agency,
            email="s@x.example",
            display_name="S",
            password_hash=password_hash,
            role_rows=[UserRole(role=Role.OFFICER.value), UserRole(role=Role.SUPERVISOR.value)],
        )
        db.session.add_all([agency, staff])
        db.session.commit()
        appeal = listed_appeal(agency, staff, staff, number="24-0301", title="Who?")
        client = app.test_client()
        html, data = tip_page(client, appeal)
        assert "pow_challenge" not in html and "proof-of-work.js" not in html
        # No stricter limit either: the ten a minute of TATTLETALE_RATELIMIT_TIPS.
        for _ in range(10):
            sent = client.post(f"/appeals/{appeal.public_id}/tip", data={**data, "body": "x"})
            assert sent.status_code == 200
        assert tips() == 10
        db.session.remove()
        db.engine.dispose()
