"""What the clip page hands the studio beyond the plan: version 1's sprite sheet and its
index for the timeline of thumbnails, and whether the clip has sound to cut ranges of."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import Clip, Role, User

Login = Callable[[User], FlaskClient]


def _page(client: FlaskClient, clip: Clip) -> str:
    response = client.get(f"/staff/clips/{clip.public_id}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_clip_page_gives_the_studio_version_1s_sprite_and_its_index(
    ready_clip: Clip, users: dict[Role, User], signed_in: Login
) -> None:
    client = signed_in(users[Role.OFFICER])
    first = ready_clip.versions[0].public_id
    page = _page(client, ready_clip)
    assert f'data-sprite-url="/staff/versions/{first}/media/sprite"' in page
    assert f'data-sprite-index-url="/staff/versions/{first}/media/sprite_index"' in page
    assert 'data-has-audio="yes"' in page
    # The 3 s, 320x240 sample: a 160x120 thumbnail every 2 s, side by side.
    index = client.get(f"/staff/versions/{first}/media/sprite_index")
    assert index.status_code == 200 and index.mimetype == "text/vtt"
    cues = index.get_data(as_text=True)
    assert "00:00:00.000 --> 00:00:02.000\nsprite.jpg#xywh=0,0,160,120" in cues
    assert "sprite.jpg#xywh=160,0,160,120" in cues
    sheet = client.get(f"/staff/versions/{first}/media/sprite")
    assert sheet.status_code == 200 and sheet.mimetype == "image/jpeg"


def test_clip_page_without_version_1s_sprite_index_leaves_the_timeline_plain(
    ready_clip: Clip, users: dict[Role, User], signed_in: Login
) -> None:
    (index,) = [r for r in ready_clip.versions[0].renditions if r.name == "sprite_index"]
    db.session.delete(index)
    db.session.commit()
    page = _page(signed_in(users[Role.OFFICER]), ready_clip)
    assert 'data-sprite-url=""' in page and 'data-sprite-index-url=""' in page


def test_clip_page_whose_version_1_is_not_rendered_yet_leaves_the_timeline_plain(
    ready_clip: Clip, users: dict[Role, User], signed_in: Login
) -> None:
    ready_clip.versions[0].status = "processing"
    db.session.commit()
    page = _page(signed_in(users[Role.OFFICER]), ready_clip)
    assert 'data-sprite-url=""' in page


def test_clip_page_of_a_clip_without_sound_offers_no_audio_ranges(
    ready_clip: Clip, users: dict[Role, User], signed_in: Login
) -> None:
    ready_clip.probe = {**ready_clip.probe, "audio": None}
    db.session.commit()
    page = _page(signed_in(users[Role.OFFICER]), ready_clip)
    assert 'data-has-audio="no"' in page
