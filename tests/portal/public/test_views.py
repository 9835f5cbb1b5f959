"""The public site as a visitor meets it: listings, search, the appeal page, the feed
and the published media, and nothing of what is not published."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import (
    Agency,
    Appeal,
    AppealStatus,
    Case,
    Clip,
    ClipVersion,
    Role,
    User,
)
from portal.models.base import utcnow
from portal.services.appeals import publish_appeal, save_appeal, week_start, withdraw_appeal
from portal.services.clips import APPROVAL_CHECKLIST, approve_version
from tests.portal.conftest import listed_appeal


@pytest.fixture
def approved(ready_clip: Clip, users: dict[Role, User]) -> ClipVersion:
    version = ready_clip.versions[0]
    approve_version(version, users[Role.SUPERVISOR], {key: True for key in APPROVAL_CHECKLIST})
    db.session.commit()
    return version


@pytest.fixture
def draft(case: Case, approved: ClipVersion, users: dict[Role, User]) -> Appeal:
    appeal = save_appeal(
        case,
        users[Role.COORDINATOR],
        title="Man wanted for a robbery at the Kwik-E-Mart",
        summary="He threatened the cashier and left in a red car.",
        question="",
        version_ids=[approved.public_id],
    )
    db.session.commit()
    return appeal


@pytest.fixture
def published(draft: Appeal, users: dict[Role, User]) -> Appeal:
    publish_appeal(draft, users[Role.COORDINATOR])
    db.session.commit()
    return draft


def links_of(html: str) -> list[str]:
    return re.findall(r'(?:src|href|poster|content)="([^"]+)"', html)


def test_public_appeal_page_has_player_poster_and_share_tags(
    client: FlaskClient, published: Appeal
) -> None:
    response = client.get(f"/appeals/{published.public_id}?via=facebook")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Man wanted for a robbery at the Kwik-E-Mart" in html
    assert "Do you recognize this person?" in html
    assert "24-0001" in html  # the case number
    assert "<video controls" in html
    assert re.search(rf'<source src="/media/{published.public_id}/[^/"]+/web_\w+"', html)
    assert re.search(rf'poster="/media/{published.public_id}/[^/"]+/poster"', html)
    for prop in ("og:title", "og:image", "og:video", "og:url"):
        assert f'property="{prop}"' in html, prop
    assert 'name="twitter:card" content="summary_large_image"' in html
    assert response.headers["Cache-Control"] == "public, max-age=60"
    assert response.headers.get("ETag")
    assert "Set-Cookie" not in response.headers
    # No request to any other host: every link is a path on this site, or (for
    # share previews, which networks fetch) an absolute URL of this same host.
    for link in links_of(html):
        assert (
            link.startswith("/")
            or link.startswith("http://localhost/")
            or not re.match(r"^[a-z]+://", link)
        ), link


def test_public_appeal_page_revalidates_by_etag(client: FlaskClient, published: Appeal) -> None:
    first = client.get(f"/appeals/{published.public_id}")
    again = client.get(
        f"/appeals/{published.public_id}", headers={"If-None-Match": first.headers["ETag"]}
    )
    assert again.status_code == 304


@pytest.mark.parametrize("via", ["<script>alert(1)</script>", "FACEBOOK", ""])
def test_public_appeal_page_takes_any_via_without_reflecting_it(
    client: FlaskClient, published: Appeal, via: str
) -> None:
    response = client.get(f"/appeals/{published.public_id}", query_string={"via": via})
    assert response.status_code == 200
    assert "<script>alert" not in response.get_data(as_text=True)


def test_public_media_serves_published_renditions_with_range_and_cache(
    client: FlaskClient, published: Appeal, approved: ClipVersion
) -> None:
    web = next(r for r in approved.renditions if r.name.startswith("web_"))
    path = f"/media/{published.public_id}/{approved.public_id}/{web.name}"
    response = client.get(path, headers={"Range": "bytes=0-99"})
    assert response.status_code == 206
    assert len(response.data) == 100
    assert response.headers["Content-Range"] == f"bytes 0-99/{web.size}"
    assert response.headers["Cache-Control"] == "public, max-age=300"
    assert response.headers["ETag"] == f'"{web.sha256}"'
    assert client.get(path, headers={"If-None-Match": f'"{web.sha256}"'}).status_code == 304
    poster = client.get(f"/media/{published.public_id}/{approved.public_id}/poster")
    assert poster.status_code == 200
    assert poster.mimetype == "image/jpeg"
    # Only the web renditions and the poster: never the sprite, the social cuts, the
    # proxy or the original, whatever name is tried.
    for name in ("sprite", "sprite_index", "square", "vertical", "original", "proxy", "manifest"):
        response = client.get(f"/media/{published.public_id}/{approved.public_id}/{name}")
        assert response.status_code == 404, name


def test_nothing_of_an_unpublished_appeal_is_reachable(
    client: FlaskClient, draft: Appeal, approved: ClipVersion, users: dict[Role, User]
) -> None:
    names = [r.name for r in approved.renditions]

    def reachable() -> list[str]:
        paths = [
            f"/appeals/{draft.public_id}",
            *(f"/media/{draft.public_id}/{approved.public_id}/{name}" for name in names),
        ]
        found = [p for p in paths if client.get(p).status_code != 404]
        for page in ("/", "/appeals.atom", "/agencies/springfield"):
            if draft.public_id in client.get(page).get_data(as_text=True):
                found.append(page)
        return found

    assert reachable() == []
    publish_appeal(draft, users[Role.COORDINATOR])
    db.session.commit()
    # Published, the same probe finds the page, the public renditions and the listings
    # (so the probe above would have seen them).
    public_names = sorted(n for n in names if n.startswith("web_") or n == "poster")
    assert sorted(reachable()) == sorted(
        [
            f"/appeals/{draft.public_id}",
            *(f"/media/{draft.public_id}/{approved.public_id}/{name}" for name in public_names),
            "/",
            "/appeals.atom",
            "/agencies/springfield",
        ]
    )
    withdraw_appeal(draft, users[Role.COORDINATOR], "Suspect identified.")
    db.session.commit()
    assert reachable() == []


def _statements(app: Flask, client: FlaskClient, path: str) -> list[str]:
    seen: list[str] = []

    def record(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        assert client.get(path).status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return seen


def test_public_pages_read_the_database_twice_however_many_appeals(
    app: Flask, client: FlaskClient, agency: Agency, users: dict[Role, User]
) -> None:
    # Every public page and media request loads the appeals and then their clips with
    # renditions and approvals: two round trips, not one per relation (and none for
    # the case's staff assignments). The benchmarks of the public site rest on it.
    owner, approver = users[Role.OFFICER], users[Role.SUPERVISOR]
    appeals = [
        listed_appeal(agency, owner, approver, number=f"Q-{n}", title=f"Appeal {n}")
        for n in range(12)
    ]
    # (Each page may also read the public generation first, at most once a second per
    # process: see test_page_cache.py. It is not counted here.)
    index = _statements(app, client, "/")
    assert "public_state" in index[0]
    assert len([s for s in index if "public_state" not in s]) == 2
    # The appeal page also counts its view: one write, of the day's total only.
    statements = _statements(app, client, f"/appeals/{appeals[3].public_id}")
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    writes = [s for s in statements if s not in reads]
    assert len([s for s in reads if "public_state" not in s]) == 2
    assert len([s for s in reads if "public_state" in s]) <= 1
    assert len(writes) == 1 and "appeal_daily_views" in writes[0]


def test_public_index_lists_this_week_then_open_then_solved(
    client: FlaskClient, agency: Agency, users: dict[Role, User]
) -> None:
    owner, approver = users[Role.OFFICER], users[Role.SUPERVISOR]
    days_into_week = (utcnow() - week_start(utcnow())).total_seconds() / 86400
    listed_appeal(
        agency,
        owner,
        approver,
        number="A-1",
        title="Fresh appeal",
        published_days_ago=days_into_week / 2,
    )
    listed_appeal(
        agency,
        owner,
        approver,
        number="A-2",
        title="Older appeal",
        published_days_ago=days_into_week + 10,
    )
    listed_appeal(
        agency,
        owner,
        approver,
        number="A-3",
        title="Solved appeal",
        published_days_ago=30,
        solved=True,
    )
    listed_appeal(
        agency, owner, approver, number="A-4", title="Draft appeal", status=AppealStatus.DRAFT
    )
    response = client.get("/")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    html = response.get_data(as_text=True)
    assert "Draft appeal" not in html
    positions = [
        html.index(t)
        for t in (
            "This week",
            "Fresh appeal",
            "Older appeal",
            "Solved — thank you",
            "Solved appeal",
        )
    ]
    assert positions == sorted(positions)
    assert "1:15" in html  # the duration on the card


def test_public_search_finds_place_and_offence(
    client: FlaskClient, agency: Agency, users: dict[Role, User]
) -> None:
    owner, approver = users[Role.OFFICER], users[Role.SUPERVISOR]
    listed_appeal(
        agency,
        owner,
        approver,
        number="S-1",
        title="Bike stolen",
        offense="Theft",
        place="742 Evergreen Terrace",
    )
    listed_appeal(
        agency,
        owner,
        approver,
        number="S-2",
        title="Shop robbed",
        offense="Robbery",
        place="Main Street",
    )
    assert_found = {
        "evergreen": ["Bike stolen"],
        "ROBBERY": ["Shop robbed"],
        "100%": [],
        "_": [],
    }
    for query, titles in assert_found.items():
        html = client.get("/", query_string={"q": query}).get_data(as_text=True)
        for title in ("Bike stolen", "Shop robbed"):
            assert (title in html) == (title in titles), (query, title)


# (A lone surrogate cannot arrive in a URL: its bytes are not UTF-8, and Werkzeug
# decodes them to U+FFFD, which is text.)
@pytest.mark.parametrize("query", ["x\x00y", "a\u202eb", "x" * 101])
def test_public_search_refuses_bad_text_with_a_message(client: FlaskClient, query: str) -> None:
    response = client.get("/", query_string={"q": query})
    assert response.status_code == 400
    assert 'role="alert"' in response.get_data(as_text=True)


def test_agency_page_lists_only_that_agency(
    client: FlaskClient,
    agency: Agency,
    other_agency: Agency,
    users: dict[Role, User],
    make_user,  # type: ignore[no-untyped-def]
) -> None:
    listed_appeal(
        agency,
        users[Role.OFFICER],
        users[Role.SUPERVISOR],
        number="G-1",
        title="Springfield appeal",
    )
    stranger = make_user(Role.OFFICER, Role.SUPERVISOR, agency_=other_agency)
    listed_appeal(other_agency, stranger, stranger, number="G-2", title="Shelbyville appeal")
    html = client.get("/agencies/shelbyville").get_data(as_text=True)
    assert "Shelbyville appeal" in html and "Springfield appeal" not in html
    assert client.get("/agencies/nowhere").status_code == 404


def test_atom_feed_lists_published_appeals(
    client: FlaskClient, agency: Agency, users: dict[Role, User]
) -> None:
    owner, approver = users[Role.OFFICER], users[Role.SUPERVISOR]
    listed_appeal(agency, owner, approver, number="F-1", title="First <appeal>")
    listed_appeal(
        agency,
        owner,
        approver,
        number="F-2",
        title="Withdrawn appeal",
        status=AppealStatus.WITHDRAWN,
    )
    response = client.get("/appeals.atom")
    assert response.status_code == 200
    assert response.mimetype == "application/atom+xml"
    feed = ET.fromstring(response.data)  # noqa: S314  (our own response)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    titles = [e.findtext("a:title", namespaces=ns) for e in feed.findall("a:entry", ns)]
    assert titles == ["First <appeal>"]
    link = feed.find("a:entry/a:link", ns)
    assert link is not None and link.get("href", "").endswith("?via=feed")


def test_staff_case_page_links_to_the_appeal_for_coordinators(
    app: Flask, case: Case, users: dict[Role, User], signed_in
) -> None:  # type: ignore[no-untyped-def]
    page = signed_in(users[Role.COORDINATOR]).get(f"/staff/cases/{case.public_id}")
    assert f"/staff/cases/{case.public_id}/appeal" in page.get_data(as_text=True)
