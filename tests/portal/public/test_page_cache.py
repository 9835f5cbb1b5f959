"""The public pages each web process keeps (portal/services/public_cache.py): kept
while nothing they show has changed, seen changed at once by the process that
changed it and within a second by every other, never kept for an address a visitor
made up."""

from __future__ import annotations

import time

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from config import Settings
from portal import create_app
from portal.extensions import db
from portal.models import Agency, Appeal, ClipVersion, Role, User
from portal.services import public_cache
from portal.services.appeals import withdraw_appeal
from tests.portal.conftest import listed_appeal


def _statements(app: Flask, client: FlaskClient, path: str, status: int = 200) -> list[str]:
    seen: list[str] = []

    def record(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        seen.append(" ".join(statement.split()))

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        assert client.get(path).status_code == status
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return seen


def _reads_appeals(statements: list[str]) -> bool:
    return any(s.startswith("SELECT appeals.") for s in statements)


def _appeal(agency: Agency, users: dict[Role, User], **kwargs: object) -> Appeal:
    return listed_appeal(
        agency,
        users[Role.OFFICER],
        users[Role.SUPERVISOR],
        number=str(kwargs.pop("number", "C-1")),
        title=str(kwargs.pop("title", "Bakery break-in")),
    )


def test_a_page_is_built_once_and_kept_until_what_it_shows_changes(
    app: Flask, client: FlaskClient, agency: Agency, users: dict[Role, User]
) -> None:
    appeal = _appeal(agency, users)
    page = f"/appeals/{appeal.public_id}"
    assert _reads_appeals(_statements(app, client, page))
    # Asked again: nothing read; the day's view count is still written.
    again = _statements(app, client, page)
    assert not _reads_appeals(again)
    assert [s for s in again if "appeal_daily_views" in s]
    assert _reads_appeals(_statements(app, client, "/"))
    assert not _reads_appeals(_statements(app, client, "/"))  # the index is kept too

    appeal.title = "Bakery break-in on Main Street"
    db.session.commit()
    html = client.get(page).get_data(as_text=True)
    assert "Bakery break-in on Main Street" in html
    assert "Bakery break-in on Main Street" in client.get("/").get_data(as_text=True)


def test_a_withdrawal_is_seen_at_once_here_and_within_a_second_by_other_processes(
    app: Flask, client: FlaskClient, settings: Settings, agency: Agency, users: dict[Role, User]
) -> None:
    appeal = _appeal(agency, users)
    page = f"/appeals/{appeal.public_id}"
    appeal_id, coordinator_id = appeal.id, users[Role.COORDINATOR].id
    # Another web process of the same installation: its own app, its own kept pages.
    other = create_app(settings)
    other.test_client_class = type(client)
    other_client = other.test_client()
    assert client.get(page).status_code == 200
    assert other_client.get(page).status_code == 200
    assert not _reads_appeals(_statements(app, client, page))  # kept here

    with other.app_context():  # the coordinator's request lands on the other process
        there = db.session.get(Appeal, appeal_id)
        assert there is not None
        withdraw_appeal(there, db.session.get(User, coordinator_id), "Suspect identified.")
        db.session.commit()
        assert other_client.get(page).status_code == 404  # at once where it was done
    time.sleep(public_cache.GENERATION_READ_S + 0.05)
    assert client.get(page).status_code == 404
    assert appeal.title not in client.get("/").get_data(as_text=True)


def test_a_change_made_with_an_update_statement_raises_the_generation(
    app: Flask, agency: Agency, users: dict[Role, User]
) -> None:
    appeal = _appeal(agency, users)
    before = db.session.scalar(sa.text("SELECT generation FROM public_state"))
    db.session.execute(
        sa.update(ClipVersion)
        .where(ClipVersion.id == appeal.clips[0].version_id)
        .values(status="ready")
    )
    db.session.commit()
    after = db.session.scalar(sa.text("SELECT generation FROM public_state"))
    assert after == before + 1
    # A commit that changes nothing the public sees leaves it alone.
    users[Role.DETECTIVE].display_name = "Det. Flynn"
    db.session.commit()
    assert db.session.scalar(sa.text("SELECT generation FROM public_state")) == after
    # A rolled-back change raises nothing.
    appeal.title = "Never saved"
    db.session.flush()
    db.session.rollback()
    db.session.commit()
    assert db.session.scalar(sa.text("SELECT generation FROM public_state")) == after


def test_addresses_a_visitor_made_up_are_never_kept(
    app: Flask, client: FlaskClient, agency: Agency, users: dict[Role, User]
) -> None:
    appeal = _appeal(agency, users)
    page = f"/appeals/{appeal.public_id}"
    for address in [
        f"{page}?utm_source=newsletter",
        f"{page}?via=somewhere-else",
        f"{page}?via=facebook&via=qr",
        "/?lang=xx",
        "/?q=bakery",
    ]:
        assert client.get(address).status_code == 200
        assert _reads_appeals(_statements(app, client, address)), address


def test_each_channel_and_language_of_a_page_is_kept_apart(
    client: FlaskClient, agency: Agency, users: dict[Role, User]
) -> None:
    appeal = _appeal(agency, users)
    page = f"/appeals/{appeal.public_id}"
    for _ in range(2):  # built, then kept: each the same both times
        facebook = client.get(f"{page}?via=facebook").get_data(as_text=True)
        qr = client.get(f"{page}?via=qr").get_data(as_text=True)
        spanish = client.get(f"{page}?lang=es").get_data(as_text=True)
        english = client.get(f"{page}?lang=en").get_data(as_text=True)
        assert "via=facebook" in facebook and "via=facebook" not in qr
        assert "via=qr" in qr
        assert '<html lang="es"' in spanish and '<html lang="en"' in english


def test_kept_pages_are_bounded_and_expire(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    now = [1000.0]
    monkeypatch.setattr(public_cache.time, "monotonic", lambda: now[0])
    kept = public_cache._Kept(ttl=60.0, size=2)
    kept.put("a", "page a")
    kept.put("b", "page b")
    assert kept.get("a") == "page a"  # now the most recently used
    kept.put("c", "page c")  # over the bound: the least recently used goes
    assert (kept.get("a"), kept.get("b"), kept.get("c")) == ("page a", None, "page c")
    now[0] += 59.9
    assert kept.get("c") == "page c"
    now[0] += 0.2  # 60.1 s after it was kept
    assert kept.get("c") is None
