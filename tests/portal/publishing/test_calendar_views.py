"""The staff pages of the weekly slot, driven over HTTP as staff use them: the
calendar (slots in the agency's zone, backlog, suggestion, the empty-slot banner),
filling a slot, a post's page, the slot settings and caption templates; the |local
filter on other staff pages; and the coordinators' empty-slot mail."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from config import Settings
from portal.extensions import db
from portal.models import Agency, Appeal, AuditEvent, Job, Role, User
from portal.models.base import utcnow
from portal.publishing.caption_models import CaptionTemplate
from portal.publishing.models import Channel, DeliveryStatus, Post, PostStatus
from portal.publishing.notices import empty_slot_warnings_due
from portal.services.localtime import format_local
from tests.portal.conftest import csrf_token, run_jobs
from tests.portal.mail_server import Inbox, free_port, smtp_server
from tests.portal.publishing.plan_helpers import rendition_named, social_appeal

Login = Callable[[User], FlaskClient]


@pytest.fixture(autouse=True)
def preflight() -> Iterator[list[str]]:
    """These pages show what the real preflight decides: the engine's stand-in (the
    package conftest's fixture of this name) is not used here."""
    yield []


@pytest.fixture
def mail_port() -> int:
    return free_port()


@pytest.fixture
def settings(settings: Settings, mail_port: int) -> Settings:
    return replace(
        settings,
        smtp_host="127.0.0.1",
        smtp_port=mail_port,
        smtp_security="none",
        smtp_timeout_s=5,
        mail_from="portal@springfield.example",
        public_url="https://tips.springfield.example",
    )


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def _appeal(agency: Agency, users: dict[Role, User], number: str, **kw: object) -> Appeal:
    return social_appeal(agency, users[Role.OFFICER], users[Role.SUPERVISOR], number=number, **kw)  # type: ignore[arg-type]


def _channel(agency: Agency, network: str, name: str) -> Channel:
    row = Channel(agency_id=agency.id, network=network, name=name, credentials=json.dumps({}))
    db.session.add(row)
    db.session.commit()
    return row


def _freeze(monkeypatch: pytest.MonkeyPatch, now: datetime) -> None:
    from portal.staff import publishing_views

    monkeypatch.setattr(publishing_views, "utcnow", lambda: now)


def _text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


# -- the calendar --------------------------------------------------------------------------


def test_calendar_shows_slots_in_local_time_across_dst_with_the_suggestion(
    app: Flask,
    agency: Agency,
    users: dict[Role, User],
    signed_in: Login,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    agency.timezone = "America/New_York"
    db.session.commit()
    _appeal(agency, users, "26-2", occurred_at=utc(2025, 6, 1), title="Newer case")
    _appeal(agency, users, "26-1", occurred_at=utc(2025, 1, 1), title="Older case")
    _freeze(monkeypatch, utc(2026, 3, 1))
    page = _text(signed_in(users[Role.COORDINATOR]).get("/staff/schedule"))
    # 3 March is before the change (EST), 10 March after it (EDT): 10:00 both times.
    assert "Tue 3 Mar, 10:00 EST" in page
    assert "Tue 10 Mar, 10:00 EDT" in page
    slots = re.findall(r'data-slot="([^"]+)"', page)
    assert slots[:2] == ["2026-03-03T15:00:00+00:00", "2026-03-10T14:00:00+00:00"]
    first = page.split('data-slot="2026-03-03T15:00:00+00:00"')[1].split("</article>")[0]
    assert "26-1 — Older case" in first  # the oldest case first
    second = page.split('data-slot="2026-03-10T14:00:00+00:00"')[1].split("</article>")[0]
    assert "26-2 — Newer case" in second
    backlog = page.split('id="backlog-title"')[1]
    assert backlog.index("26-1") < backlog.index("26-2")
    assert "data-empty-slot" not in page  # two days ahead: no warning yet


def test_calendar_warns_a_day_before_an_empty_slot(
    app: Flask,
    agency: Agency,
    users: dict[Role, User],
    signed_in: Login,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    agency.timezone = "America/New_York"
    db.session.commit()
    _freeze(monkeypatch, utc(2026, 3, 2, 16))  # 23 hours before Tuesday 10:00 EST
    page = _text(signed_in(users[Role.COORDINATOR]).get("/staff/schedule"))
    assert "The slot on Tuesday 3 March, 10:00 EST is still empty." in page


def test_calendar_refused_to_officers_and_admins(
    app: Flask, users: dict[Role, User], signed_in: Login
) -> None:
    for role in (Role.OFFICER, Role.ADMIN):
        client = signed_in(users[role])
        assert client.get("/staff/schedule").status_code == 403
        client.post("/staff/logout", data={"csrf_token": csrf_token(client, "/staff/account")})


# -- filling a slot ---------------------------------------------------------------------------


def _fill(client: FlaskClient, **data: object) -> TestResponse:
    token = csrf_token(client, "/staff/schedule/fill")
    return client.post("/staff/schedule/fill", data={"csrf_token": token, **data})


def test_fill_slot_schedules_with_the_real_caption_and_rendition(
    app: Flask, agency: Agency, users: dict[Role, User], signed_in: Login
) -> None:
    appeal = _appeal(agency, users, "26-5", durations=(200.0, 100.0))
    x = _channel(agency, "x", "Springfield PD on X")
    client = signed_in(users[Role.COORDINATOR])
    form = _text(client.get("/staff/schedule/fill"))
    # The suggestion is ticked, and so is every connected channel.
    assert re.search(
        rf'checked[^>]*value="{appeal.public_id}"|value="{appeal.public_id}"[^>]*checked', form
    )
    slot = re.search(r'<option selected value="([^"]+)"', form) or re.search(
        r'<option value="([^"]+)"', form
    )
    assert slot
    response = _fill(
        client, slot=slot.group(1), appeals=[appeal.public_id], channels=[x.public_id], schedule="1"
    )
    assert response.status_code == 302
    post = db.session.scalars(sa.select(Post)).one()
    assert post.status == PostStatus.SCHEDULED.value
    assert post.slot_at == datetime.fromisoformat(slot.group(1))
    delivery = next(d for d in post.deliveries if d.channel_id == x.id)
    # Clip 1 runs 200 s, over X's 140: the second clip's 1280x720 cut goes.
    assert delivery.rendition_id == rendition_named(appeal, "web_720", clip=1).id
    assert f"/appeals/{appeal.public_id}?via=x" in delivery.text
    assert {d.channel.network for d in post.deliveries} == {"portal", "x"}


def test_fill_slot_refused_by_preflight_says_what_to_change_and_keeps_nothing(
    app: Flask, agency: Agency, users: dict[Role, User], signed_in: Login
) -> None:
    appeal = _appeal(agency, users, "26-6", durations=(120.0,))
    reel = _channel(agency, "facebook_reel", "Springfield PD Reels")
    client = signed_in(users[Role.COORDINATOR])
    slot = re.search(r'<option[^>]*value="([^"]+)"', _text(client.get("/staff/schedule/fill")))
    assert slot
    response = _fill(
        client,
        slot=slot.group(1),
        appeals=[appeal.public_id],
        channels=[reel.public_id],
        schedule="1",
    )
    assert response.status_code == 422
    page = _text(response)
    assert "This post cannot go out as it is" in page
    assert (
        "it runs 120 s; Facebook Page Reel takes at most 90 s: trim the clip to 90 s or less"
        in page
    )
    assert db.session.scalars(sa.select(Post)).all() == []


def test_fill_slot_post_now_starts_publishing(
    app: Flask, agency: Agency, users: dict[Role, User], signed_in: Login
) -> None:
    appeal = _appeal(agency, users, "26-7")
    client = signed_in(users[Role.SUPERVISOR])
    slot = re.search(r'<option[^>]*value="([^"]+)"', _text(client.get("/staff/schedule/fill")))
    assert slot
    response = _fill(client, slot=slot.group(1), appeals=[appeal.public_id], post_now="1")
    assert response.status_code == 302
    post = db.session.scalars(sa.select(Post)).one()
    assert post.status == PostStatus.PUBLISHING.value
    assert abs((post.slot_at - utcnow()).total_seconds()) < 60
    jobs = db.session.scalar(
        sa.select(sa.func.count()).select_from(Job).where(Job.name.like("publishing.%"))
    )
    assert jobs is not None and jobs >= 1


def test_fill_slot_without_csrf_is_refused(
    app: Flask, agency: Agency, users: dict[Role, User], signed_in: Login
) -> None:
    appeal = _appeal(agency, users, "26-8")
    client = signed_in(users[Role.COORDINATOR])
    response = client.post(
        "/staff/schedule/fill", data={"appeals": [appeal.public_id], "schedule": "1"}
    )
    assert response.status_code == 400
    assert db.session.scalars(sa.select(Post)).all() == []


# -- the post page --------------------------------------------------------------------------


def test_post_page_shows_caption_as_counted_beside_the_rendition_and_each_status(
    app: Flask, agency: Agency, users: dict[Role, User], signed_in: Login
) -> None:
    db.session.add(
        CaptionTemplate(
            agency_id=agency.id,
            network="",
            item="{title} {tip_url}",
            closing="{hashtags}",
            hashtags="#TattletaleTuesday",
        )
    )
    db.session.commit()
    appeal = _appeal(agency, users, "26-9", title="Robbery")
    mastodon = _channel(agency, "mastodon", "Springfield on Mastodon")
    bluesky = _channel(agency, "bluesky", "Springfield on Bluesky")
    x = _channel(agency, "x", "Springfield on X")
    reel = _channel(agency, "facebook_reel", "Springfield Reels")
    from portal.publishing.services.posts import create_post, schedule_post

    coordinator = users[Role.COORDINATOR]
    post = create_post(
        agency,
        coordinator,
        [appeal.public_id],
        utcnow() + timedelta(days=2),
        [mastodon.public_id, bluesky.public_id, x.public_id, reel.public_id],
    )
    schedule_post(post, coordinator)
    db.session.commit()
    by_network = {d.channel.network: d for d in post.deliveries}
    retry_at = utc(2027, 1, 5, 15, 30)
    by_network["mastodon"].status = DeliveryStatus.SENT.value
    by_network["mastodon"].remote_url = "https://police.social/@springfield/1"
    by_network["mastodon"].sent_at = utc(2027, 1, 5, 15)
    by_network["bluesky"].status = DeliveryStatus.SENDING.value
    by_network["bluesky"].step = "video uploaded"
    by_network["x"].status = DeliveryStatus.RETRYING.value
    by_network["x"].next_attempt_at = retry_at
    by_network["x"].attempts = 2
    by_network["x"].reason = "429 rate limited"
    by_network["facebook_reel"].status = DeliveryStatus.FAILED.value
    by_network["facebook_reel"].reason = "The access token expired: reconnect the channel."
    db.session.commit()

    page = _text(signed_in(coordinator).get(f"/staff/posts/{post.public_id}"))
    section = {
        m.group(1): m.group(2)
        for m in re.finditer(r'data-network="(\w+)">(.*?)</section>', page, re.S)
    }
    # "Robbery" 7 + " " + link 23 + "\n\n" + "#TattletaleTuesday" 18 = 51 on Mastodon.
    assert "51 / 500" in section["mastodon"]
    link = f"https://tips.springfield.example/appeals/{appeal.public_id}?via=bluesky"
    # Bluesky counts the link in full: 7 + 1 + len(link) + 2 + 18.
    assert f"{7 + 1 + len(link) + 2 + 18} / 300" in section["bluesky"]
    assert "https://police.social/@springfield/1" in section["mastodon"]
    assert "Sending: video uploaded." in section["bluesky"]
    assert "Retrying at 2027-01-05 15:30 UTC (attempt 2): 429 rate limited." in section["x"]
    assert "Failed: The access token expired: reconnect the channel." in section["facebook_reel"]
    # Beside each caption the cut that goes: X's 1280x720, the Reel's 9:16.
    assert 'data-rendition="web_720"' in section["x"]
    assert 'data-rendition="vertical"' in section["facebook_reel"]
    assert f"/versions/{appeal.clips[0].version.public_id}/" in section["x"]


def test_post_page_of_another_agency_is_not_found(
    app: Flask,
    agency: Agency,
    other_agency: Agency,
    users: dict[Role, User],
    make_user: Callable[..., User],
    signed_in: Login,
) -> None:
    stranger = make_user(Role.COORDINATOR, agency_=other_agency)
    post = Post(agency_id=other_agency.id, slot_at=utcnow(), created_by_id=stranger.id)
    db.session.add(post)
    db.session.commit()
    assert (
        signed_in(users[Role.COORDINATOR]).get(f"/staff/posts/{post.public_id}").status_code == 404
    )


# -- settings (admins) ------------------------------------------------------------------------


def test_slot_settings_saved_by_an_admin_and_audited(
    app: Flask, agency: Agency, users: dict[Role, User], signed_in: Login
) -> None:
    client = signed_in(users[Role.ADMIN])
    token = csrf_token(client, "/staff/schedule/settings")
    response = client.post(
        "/staff/schedule/settings",
        data={
            "csrf_token": token,
            "weekday": "4",
            "time": "09:30",
            "timezone": "Europe/Berlin",
            "appeals_per_post": "2",
            "remove_posts_after_days": "30",
        },
    )
    assert response.status_code == 302
    db.session.refresh(agency)
    assert (agency.slot_weekday, agency.slot_minute, agency.timezone) == (4, 570, "Europe/Berlin")
    assert (agency.appeals_per_post, agency.remove_posts_after_days) == (2, 30)
    event = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "publishing.slot_settings")
    ).one()
    assert event.details["after"]["timezone"] == "Europe/Berlin"
    assert event.details["before"]["minute"] == 600


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("timezone", "Mars/Olympus_Mons", "is not a time zone of the tz database"),
        ("time", "25:00", "Write the time as HH:MM"),
        ("appeals_per_post", "0", "Number must be between 1 and 6."),
        ("timezone", "Europe/Berlin\u202e", "Time zone must not contain"),
    ],
)
def test_slot_settings_bad_input(
    app: Flask,
    agency: Agency,
    users: dict[Role, User],
    signed_in: Login,
    field: str,
    value: str,
    message: str,
) -> None:
    client = signed_in(users[Role.ADMIN])
    data = {
        "weekday": "2",
        "time": "10:00",
        "timezone": "UTC",
        "appeals_per_post": "1",
        "remove_posts_after_days": "0",
    }
    data[field] = value
    response = client.post(
        "/staff/schedule/settings",
        data={"csrf_token": csrf_token(client, "/staff/schedule/settings"), **data},
    )
    assert response.status_code == 400
    assert message.lower() in _text(response).lower()
    db.session.refresh(agency)
    assert agency.timezone == "UTC" and agency.slot_minute == 600


def test_caption_template_preview_does_not_save_and_save_is_audited(
    app: Flask, agency: Agency, users: dict[Role, User], signed_in: Login
) -> None:
    client = signed_in(users[Role.ADMIN])
    path = "/staff/schedule/captions/mastodon"
    page = _text(client.get(path))
    assert "Please don&#39;t name anyone in the comments" in page  # the default
    data = {"item": "{title} {tip_url}", "closing": "{hashtags}", "hashtags": "#Springfield"}
    response = client.post(
        path, data={"csrf_token": csrf_token(client, path), "preview": "1", **data}
    )
    assert response.status_code == 200
    preview = _text(response).split("data-caption>")[1].split("</pre>")[0]
    # Sample title (39) + " " + link (23) + "\n\n" + "#Springfield" (12) = 77.
    assert preview.startswith("Man wanted for a robbery on Main Street https://")
    assert "77 / 500" in _text(response)
    assert db.session.scalars(sa.select(CaptionTemplate)).all() == []
    response = client.post(path, data={"csrf_token": csrf_token(client, path), "save": "1", **data})
    assert response.status_code == 302
    row = db.session.scalars(sa.select(CaptionTemplate)).one()
    assert (row.network, row.item, row.hashtags) == (
        "mastodon",
        "{title} {tip_url}",
        "#Springfield",
    )
    assert db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "publishing.caption_template")
    ).one()


def test_caption_template_refuses_unknown_fields_and_a_missing_tip_link(
    app: Flask, agency: Agency, users: dict[Role, User], signed_in: Login
) -> None:
    client = signed_in(users[Role.ADMIN])
    path = "/staff/schedule/captions/x"
    response = client.post(
        path,
        data={
            "csrf_token": csrf_token(client, path),
            "save": "1",
            "item": "{title.__class__} {colour}",
            "closing": "",
            "hashtags": "",
        },
    )
    assert response.status_code == 400
    page = _text(response)
    assert "{title.__class__} is not a field here" not in page  # not a field name at all
    assert "{colour} is not a field here" in page
    assert "the template must contain {tip_url}" in page
    assert db.session.scalars(sa.select(CaptionTemplate)).all() == []
    assert client.get("/staff/schedule/captions/myspace").status_code == 404


# -- staff times in the agency's zone -----------------------------------------------------------


def test_format_local_names_the_zone_across_dst() -> None:
    assert format_local(utc(2026, 3, 3, 15), "America/New_York") == "2026-03-03 10:00 EST"
    assert format_local(utc(2026, 3, 10, 14), "America/New_York") == "2026-03-10 10:00 EDT"
    assert format_local(None, "America/New_York") == ""
    assert format_local(utc(2026, 3, 3, 15), "No/Such_Zone") == "2026-03-03 15:00 UTC"


def test_case_page_shows_times_in_the_agency_zone(
    app: Flask, agency: Agency, users: dict[Role, User], signed_in: Login
) -> None:
    agency.timezone = "America/New_York"
    appeal = _appeal(agency, users, "26-30", occurred_at=utc(2026, 7, 4, 2, 30))
    page = _text(signed_in(users[Role.OFFICER]).get(f"/staff/cases/{appeal.case.public_id}"))
    assert "2026-07-03 22:30 EDT" in page
    assert "02:30 UTC" not in page


# -- the coordinators' mail -----------------------------------------------------------------------


@pytest.fixture
def server(app: Flask, mail_port: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    from tests.portal import mail_server

    monkeypatch.setattr(mail_server, "free_port", lambda: mail_port)
    with smtp_server() as (inbox, _):
        yield inbox


def test_empty_slot_mail_goes_to_each_coordinator_once(
    app: Flask,
    agency: Agency,
    users: dict[Role, User],
    make_user: Callable[..., User],
    server: Inbox,
) -> None:
    second = make_user(Role.COORDINATOR)
    now = utcnow()
    slot = (now + timedelta(hours=6)).replace(second=0, microsecond=0)
    agency.timezone = "UTC"
    agency.slot_weekday = slot.isoweekday()
    agency.slot_minute = slot.hour * 60 + slot.minute
    db.session.commit()
    assert empty_slot_warnings_due(now) == 2
    assert empty_slot_warnings_due(now + timedelta(minutes=15)) == 2  # enqueued again: same keys
    db.session.commit()
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(Job).where(Job.name == "mail.empty_slot")
        )
        == 2
    )
    assert sorted(run_jobs()) == ["succeeded", "succeeded"]
    recipients = sorted(m["To"] for m in server.messages)
    assert recipients == sorted([users[Role.COORDINATOR].email, second.email])
    body = server.messages[0].get_payload(decode=True)
    assert isinstance(body, bytes)
    body = body.decode()
    assert "https://tips.springfield.example/staff/schedule" in body
    assert run_jobs() == []


def test_empty_slot_mail_not_sent_once_the_slot_is_filled(
    app: Flask, agency: Agency, users: dict[Role, User], server: Inbox
) -> None:
    now = utcnow()
    slot = (now + timedelta(hours=6)).replace(second=0, microsecond=0)
    agency.timezone = "UTC"
    agency.slot_weekday = slot.isoweekday()
    agency.slot_minute = slot.hour * 60 + slot.minute
    db.session.commit()
    assert empty_slot_warnings_due(now) == 1
    db.session.commit()
    db.session.add(
        Post(
            agency_id=agency.id,
            slot_at=slot,
            status=PostStatus.SCHEDULED.value,
            created_by_id=users[Role.COORDINATOR].id,
        )
    )
    db.session.commit()
    assert run_jobs() == ["succeeded"]
    assert server.messages == []
    assert empty_slot_warnings_due(now) == 0
