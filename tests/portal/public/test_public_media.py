"""Published media from the agency's own origin, in each mode: served by the portal
(Range, tested in test_views.py), handed to a front proxy (X-Accel-Redirect,
X-Sendfile), or copied to a public media origin (TATTLETALE_PUBLIC_MEDIA_URL) that
the appeal page then plays from."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import replace

import pytest
from flask.testing import FlaskClient

from config import Settings
from portal.extensions import db
from portal.models import Appeal, Case, Clip, ClipVersion, Role, User
from portal.services.appeals import publish_appeal, save_appeal, withdraw_appeal
from portal.services.clips import APPROVAL_CHECKLIST, approve_version, revoke_approval
from portal.services.storage import get_store
from tests.portal.conftest import run_jobs

ORIGIN = "https://media.springfield.example"


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """The test's settings with what its ``indirect`` parameter changes."""
    return replace(settings, **getattr(request, "param", {}))


@pytest.fixture
def approved(ready_clip: Clip, users: dict[Role, User]) -> ClipVersion:
    version = ready_clip.versions[0]
    approve_version(version, users[Role.SUPERVISOR], {key: True for key in APPROVAL_CHECKLIST})
    db.session.commit()
    return version


@pytest.fixture
def published(case: Case, approved: ClipVersion, users: dict[Role, User]) -> Appeal:
    appeal = save_appeal(
        case,
        users[Role.COORDINATOR],
        title="Man wanted for a robbery",
        summary="",
        question="",
        version_ids=[approved.public_id],
    )
    publish_appeal(appeal, users[Role.COORDINATOR])
    db.session.commit()
    return appeal


def web_rendition(version: ClipVersion):  # type: ignore[no-untyped-def]
    return next(r for r in version.renditions if r.name.startswith("web_"))


# -- a front proxy sends the file ----------------------------------------------------------


@pytest.mark.parametrize("settings", [{"media_offload": "x-accel-redirect"}], indirect=True)
def test_published_media_is_handed_to_nginx_by_x_accel_redirect(
    client: FlaskClient, published: Appeal, approved: ClipVersion, settings: Settings
) -> None:
    web = web_rendition(approved)
    path = f"/media/{published.public_id}/{approved.public_id}/{web.name}"
    for headers in ({}, {"Range": "bytes=0-99"}):
        response = client.get(path, headers=headers)
        # nginx answers the Range itself, from the file.
        assert response.status_code == 200, headers
        assert response.headers["X-Accel-Redirect"] == f"/_media/{web.storage_key}"
        assert response.data == b""
        assert response.headers["Cache-Control"] == "public, max-age=300"
        assert response.headers["ETag"] == f'"{web.sha256}"'
        assert response.mimetype == "video/mp4"
        assert "Content-Range" not in response.headers
    # The location's alias is the store's directory: the key names the rendition's file.
    media_root = settings.storage_url.removeprefix("file://")
    with open(os.path.join(media_root, web.storage_key), "rb") as stored:
        assert hashlib.sha256(stored.read()).hexdigest() == web.sha256
    # Revalidation is answered here, without a redirect.
    fresh = client.get(path, headers={"If-None-Match": f'"{web.sha256}"'})
    assert fresh.status_code == 304 and "X-Accel-Redirect" not in fresh.headers
    # Nothing unpublished is ever redirected to.
    withdraw_appeal(published, None, "Arrested.")
    db.session.commit()
    gone = client.get(path)
    assert gone.status_code == 404 and "X-Accel-Redirect" not in gone.headers


@pytest.mark.parametrize("settings", [{"media_offload": "x-sendfile"}], indirect=True)
def test_published_media_is_handed_to_the_proxy_by_x_sendfile(
    client: FlaskClient, published: Appeal, approved: ClipVersion
) -> None:
    poster = next(r for r in approved.renditions if r.name == "poster")
    response = client.get(f"/media/{published.public_id}/{approved.public_id}/poster")
    assert response.status_code == 200
    assert response.data == b""
    target = response.headers["X-Sendfile"]
    assert os.path.isabs(target) and target.endswith(poster.storage_key)
    assert os.path.getsize(target) == poster.size
    assert response.mimetype == "image/jpeg"
    assert response.headers["Cache-Control"] == "public, max-age=300"


def test_published_media_is_sent_by_the_portal_by_default(
    client: FlaskClient, published: Appeal, approved: ClipVersion
) -> None:
    web = web_rendition(approved)
    response = client.get(f"/media/{published.public_id}/{approved.public_id}/{web.name}")
    assert response.status_code == 200
    assert len(response.data) == web.size
    assert "X-Accel-Redirect" not in response.headers and "X-Sendfile" not in response.headers


# -- a public media origin ------------------------------------------------------------------


def sources(html: str) -> list[str]:
    return re.findall(r'(?:<source src|poster|<img src)="([^"]+)"', html)


def copies(appeal: Appeal) -> list[str]:
    return sorted(get_store().iter_keys(f"public-media/{appeal.public_id}/"))


@pytest.mark.parametrize("settings", [{"public_media_url": ORIGIN}], indirect=True)
def test_published_renditions_are_copied_to_the_public_origin_and_played_from_it(
    client: FlaskClient, published: Appeal, approved: ClipVersion
) -> None:
    page = f"/appeals/{published.public_id}"
    # Until the copy job ran, the portal plays them: never a broken player.
    before = client.get(page).get_data(as_text=True)
    assert sources(before) and all(s.startswith("/media/") for s in sources(before))
    assert run_jobs() == ["succeeded"]
    public = [r for r in approved.renditions if r.name.startswith("web_") or r.name == "poster"]
    assert copies(published) == sorted(
        f"public-media/{published.public_id}/{approved.public_id}/{r.storage_key.rsplit('/', 1)[1]}"
        for r in public
    )
    store = get_store()
    for rendition in public:
        key = f"public-media/{published.public_id}/{approved.public_id}/{rendition.name}"
        key += os.path.splitext(rendition.storage_key)[1]
        with store.open(key) as copy:
            assert hashlib.sha256(copy.read()).hexdigest() == rendition.sha256
    response = client.get(page)
    html = response.get_data(as_text=True)
    prefix = f"{ORIGIN}/{published.public_id}/{approved.public_id}/"
    assert sources(html) and all(s.startswith(prefix) for s in sources(html))
    policy = response.headers["Content-Security-Policy"]
    assert f"media-src 'self' blob: {ORIGIN};" in policy
    assert f"img-src 'self' data: blob: {ORIGIN};" in policy
    assert policy.count("https://") == 2  # that origin, and no other
    api = client.get(f"/api/v1/public/appeals/{published.public_id}").json
    assert api["clips"][0]["poster_url"].startswith(prefix)
    assert all(v["url"].startswith(prefix) for v in api["clips"][0]["videos"])
    # The tip page is still never cached; published media stays cacheable.
    assert client.get(f"{page}/tip").headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("settings", [{"public_media_url": ORIGIN}], indirect=True)
def test_public_copies_are_removed_on_withdrawal_and_on_revocation(
    client: FlaskClient, published: Appeal, approved: ClipVersion, users: dict[Role, User]
) -> None:
    run_jobs()
    assert copies(published)
    withdraw_appeal(published, users[Role.COORDINATOR], "He was arrested.")
    db.session.commit()
    assert run_jobs() == ["succeeded"]
    assert copies(published) == []
    assert not any(item.public_copy for item in published.clips)
    publish_appeal(published, users[Role.COORDINATOR])
    db.session.commit()
    run_jobs()
    assert copies(published)
    revoke_approval(approved, users[Role.SUPERVISOR], "The face of a bystander shows.")
    db.session.commit()
    assert run_jobs() == ["succeeded"]
    assert copies(published) == []
    assert client.get(f"/appeals/{published.public_id}").status_code == 404


def test_without_a_public_origin_nothing_is_copied_and_the_policy_names_no_host(
    client: FlaskClient, published: Appeal
) -> None:
    assert run_jobs() == []
    assert copies(published) == []
    policy = client.get(f"/appeals/{published.public_id}").headers["Content-Security-Policy"]
    assert "https://" not in policy and "media-src 'self' blob:;" in policy
