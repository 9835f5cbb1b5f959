"""A tip's random number that another tip already has (1 in 2^50 per tip stored):
the database's unique index refuses it and the tip is taken under a new number,
through the form (with a photo staged by the same request) and through the API,
and nothing of the tip that had the number changes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import Agency, Appeal, Tip
from portal.services import tips
from portal.services.tips import TipInput, TipNumberTaken, submit_tip
from tests.portal.api.test_public import appeal, proof
from tests.portal.public.test_attachments import form_fields, latest_tip, photo, receipt_of, send

__all__ = ["appeal", "photo"]  # fixtures, used below

FIRST = "T-AAAAA-AAAAA"


@pytest.fixture
def taken(agency: Agency) -> Iterator[list[str]]:
    """A tip numbered FIRST, and new_tip_number drawing FIRST once more before
    drawing at random again; yields what was drawn."""
    tip, _ = submit_tip(TipInput(body="The first tip."), agency=agency)
    db.session.execute(sa.update(Tip).where(Tip.id == tip.id).values(number=FIRST))
    db.session.commit()
    drawn: list[str] = []
    draw = tips.new_tip_number

    def rigged() -> str:
        drawn.append(FIRST if not drawn else draw())
        return drawn[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tips, "new_tip_number", rigged)
        yield drawn


def first_tip_unchanged() -> None:
    db.session.expire_all()
    first = db.session.scalars(sa.select(Tip).where(Tip.number == FIRST)).one()
    assert first.body == "The first tip."
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Tip)) == 2


def test_form_tip_with_a_taken_number_is_taken_under_another(
    client: FlaskClient, taken: list[str], photo: bytes
) -> None:
    response = send(client, form_fields(client), [(photo, "IMG_0001.jpg", "image/jpeg")])
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page
    number, _ = receipt_of(page)
    assert taken[0] == FIRST and number == taken[1] != FIRST
    tip = latest_tip()
    assert (tip.number, tip.body) == (number, "He lives at 12 Elm Street.")
    # The photo the request staged is the new tip's, not lost with the spent attempt.
    assert [a.status for a in tip.attachments] == ["queued"]
    first_tip_unchanged()


def test_api_tip_with_a_taken_number_is_taken_under_another(
    client: FlaskClient, appeal: Appeal, taken: list[str]
) -> None:
    response = client.post(
        f"/api/v1/public/appeals/{appeal.public_id}/tips",
        json={"body": "That is Snake."},
        headers=proof(client),
    )
    assert response.status_code == 201, response.json
    assert taken[0] == FIRST and response.json["number"] == taken[1] != FIRST
    tip = db.session.scalars(sa.select(Tip).where(Tip.number == taken[1])).one()
    assert (tip.body, tip.appeal_id) == ("That is Snake.", appeal.id)
    first_tip_unchanged()


def test_the_proof_spent_by_a_tip_taken_under_another_number_stays_spent(
    client: FlaskClient, appeal: Appeal, taken: list[str]
) -> None:
    """Whatever keeps the spent proofs (Redis, or the database without it), the
    attempt that drew a taken number does not give the proof back."""
    path = f"/api/v1/public/appeals/{appeal.public_id}/tips"
    headers = proof(client)
    assert client.post(path, json={"body": "That is Snake."}, headers=headers).status_code == 201
    assert taken[0] == FIRST and len(taken) == 2
    replay = client.post(path, json={"body": "That is Snake, again."}, headers=headers)
    assert replay.status_code == 400, replay.json
    assert replay.json["field"] == "X-Proof-Of-Work"
    first_tip_unchanged()


def test_a_number_taken_every_time_is_refused_after_a_few_draws(agency: Agency) -> None:
    """(Only a broken random source draws a taken number three times running.)"""
    submit_tip(TipInput(body="One."), agency=agency)
    db.session.commit()
    existing = db.session.scalars(sa.select(Tip)).one().number
    drawn: list[str] = []

    def always_taken() -> str:
        drawn.append(existing)
        return existing

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tips, "new_tip_number", always_taken)
        with pytest.raises(TipNumberTaken):
            tips.with_a_free_number(lambda: submit_tip(TipInput(body="Two."), agency=agency))
    assert len(drawn) == 3
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Tip)) == 1


def test_a_taken_number_is_told_apart_from_other_refusals(agency: Agency) -> None:
    """Only the number's index means "draw again"; any other integrity error is not
    retried (it would fail the same way again)."""
    submit_tip(TipInput(body="One."), agency=agency)
    db.session.commit()
    existing = db.session.scalars(sa.select(Tip)).one()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tips, "new_tip_number", lambda: existing.number)
        with pytest.raises(TipNumberTaken):
            submit_tip(TipInput(body="Two."), agency=agency)
    db.session.rollback()
    with pytest.raises(sa.exc.IntegrityError) as refused:
        submit_tip(TipInput(body="Three."), agency=Agency(id=10_000, name="None", slug="none"))
    assert not isinstance(refused.value, TipNumberTaken)
    db.session.rollback()
