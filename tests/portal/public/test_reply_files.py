"""The files of a tipster's answer on their tip's thread, sent one by one and
resumably (tus) as the reply form's page does with JavaScript: only with the tip's
receipt session (the reply form's thread token), bound to that tip, in the same limits
as the tip form's files; and the form sent afterwards takes them with the answer."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import Agency, Tip, TipAttachment
from tests.portal.conftest import proof_fields, run_jobs
from tests.portal.public.test_attachments import form_fields, photo, send, thread  # noqa: F401
from tests.portal.public.test_tip_files import MP4_HEAD, TUS

REPLY_FILES = "/tips/reply/files"


def reply_page(client: FlaskClient, body: str) -> dict[str, str]:
    """A new tip, and its thread opened with the receipt: what the reply form's
    uploader reads from the page."""
    receipt = send(client, form_fields(client), [], body=body).get_data(as_text=True)
    page = thread(client, receipt)
    found = {
        name: re.search(pattern, page)
        for name, pattern in {
            "token": r'name="token" type="hidden" value="([^"]+)"',
            "draft": r'name="draft" type="hidden" value="([^"]+)"',
            "csrf_token": r'name="csrf_token" type="hidden" value="([^"]+)"',
            "files_url": r'data-files-url="([^"]+)"',
            "chunk": r'data-chunk-bytes="(\d+)"',
        }.items()
    }
    missing = [name for name, match in found.items() if match is None]
    assert not missing, f"the thread page lacks {missing}"
    tip = db.session.scalar(sa.select(Tip).order_by(Tip.id.desc()))
    assert tip is not None
    # The page's proof of work, solved as its script does (the form with files is
    # sent with JavaScript).
    return {
        **{n: m.group(1) for n, m in found.items() if m},
        **proof_fields(page),
        "tip": tip.public_id,
    }


def tus_headers(page: dict[str, str], **more: str) -> dict[str, str]:
    return {**TUS, "Tip-Draft": page["draft"], "Tip-Thread": page["token"], **more}


def start(client: FlaskClient, page: dict[str, str], length: int) -> str:
    answer = client.post(
        page["files_url"], headers=tus_headers(page, **{"Upload-Length": str(length)})
    )
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return answer.headers["Location"]


def patch(client: FlaskClient, headers: dict[str, str], location: str, offset: int, chunk: bytes):  # type: ignore[no-untyped-def]
    return client.patch(
        location,
        data=chunk,
        headers={
            **headers,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
        },
    )


def send_reply(client: FlaskClient, page: dict[str, str], body: str):  # type: ignore[no-untyped-def]
    """The reply form as the page sends it once its files arrived: without them."""
    names = ("token", "draft", "csrf_token", "pow_challenge", "pow_solution")
    fields = {k: page[k] for k in names if k in page}
    return send(client, fields, [], body=body, path="/tips/reply")


def test_an_answers_photo_arrives_in_chunks_and_goes_with_the_answer(
    app: Flask,
    client: FlaskClient,
    agency: Agency,
    photo: bytes,  # noqa: F811
) -> None:
    page = reply_page(client, "A man in a red cap.")
    assert page["files_url"] == REPLY_FILES
    location = start(client, page, len(photo))
    half = len(photo) // 2
    assert patch(client, tus_headers(page), location, 0, photo[:half]).status_code == 204
    head = client.head(location, headers=tus_headers(page))
    assert (head.status_code, head.headers["Upload-Offset"]) == (200, str(half))
    answer = patch(client, tus_headers(page), location, half, photo[half:])
    assert (answer.status_code, answer.headers["Upload-Offset"]) == (204, str(len(photo)))

    response = send_reply(client, page, "Here is his car.")
    text = response.get_data(as_text=True)
    assert response.status_code == 200, text
    assert "Here is his car." in text and "Photo 1" in text
    tip = db.session.scalar(sa.select(Tip).where(Tip.public_id == page["tip"]))
    assert tip is not None
    (row,) = tip.attachments
    assert row.message_id == tip.messages[0].id
    assert (row.status, row.kind, row.format) == ("queued", "image", "jpeg")
    assert run_jobs() == ["succeeded"]
    db.session.refresh(row)
    assert row.status == "ready"


def test_another_tips_receipt_session_cannot_reach_or_take_an_answers_files(
    app: Flask, client: FlaskClient, agency: Agency
) -> None:
    mine = reply_page(client, "Mine: a grey hatchback.")
    other = reply_page(client, "Someone else's tip.")
    location = start(client, mine, 1000)
    # The other tip's session with my form's draft secret, or my secret alone (no
    # session, as a tip form's file is asked for): no such file.
    for headers in (
        {**tus_headers(mine), "Tip-Thread": other["token"]},
        {k: v for k, v in tus_headers(mine).items() if k != "Tip-Thread"},
        {**tus_headers(mine), "Tip-Thread": mine["token"] + "x"},  # a forged session
    ):
        assert client.head(location, headers=headers).status_code == 404
        assert patch(client, headers, location, 0, MP4_HEAD).status_code == 404
        assert client.delete(location, headers=headers).status_code == 404
    assert client.head(location, headers=tus_headers(mine)).status_code == 200

    # A file finished under my session is not taken by the other tip's answer, even
    # sent with my form's draft secret.
    content = MP4_HEAD + b"\0" * (1000 - len(MP4_HEAD))
    assert patch(client, tus_headers(mine), location, 0, content).status_code == 204
    stolen = {**other, "draft": mine["draft"]}
    assert send_reply(client, stolen, "Taking their file.").status_code == 200
    tip = db.session.scalar(sa.select(Tip).where(Tip.public_id == other["tip"]))
    assert tip is not None and tip.attachments == []
    row = db.session.scalar(sa.select(TipAttachment))
    assert row is not None and (row.tip_id, row.status) == (None, "draft")
    # Nor can files be started without a session, or with an expired one.
    for headers in (
        {**TUS, "Tip-Draft": mine["draft"], "Upload-Length": "1000"},
        {**tus_headers(mine), "Tip-Thread": "expired.token.value", "Upload-Length": "1000"},
    ):
        answer = client.post(REPLY_FILES, headers=headers)
        assert answer.status_code == 404
        assert "expired" in answer.get_json()["title"]
    # My own answer takes it.
    mine_answer = send_reply(client, mine, "With the video.")
    assert mine_answer.status_code == 200, mine_answer.get_data(as_text=True)
    db.session.expire_all()
    tip = db.session.scalar(sa.select(Tip).where(Tip.public_id == mine["tip"]))
    assert tip is not None and [a.public_id for a in tip.attachments] == [row.public_id]


def test_a_tip_forms_files_are_not_an_answers(
    app: Flask, client: FlaskClient, agency: Agency
) -> None:
    page = reply_page(client, "A blue bicycle.")
    # A file sent as the tip form's (no session) with the reply form's draft secret.
    answer = client.post(
        "/agencies/springfield/tip/files",
        headers={**TUS, "Tip-Draft": page["draft"], "Upload-Length": str(len(MP4_HEAD))},
    )
    assert answer.status_code == 201
    location = answer.headers["Location"]
    plain = {**TUS, "Tip-Draft": page["draft"]}
    assert patch(client, plain, location, 0, MP4_HEAD).status_code == 204
    assert send_reply(client, page, "Nothing attached here.").status_code == 200
    tip = db.session.scalar(sa.select(Tip).where(Tip.public_id == page["tip"]))
    assert tip is not None and tip.attachments == []


def test_an_answers_files_are_held_to_the_tip_forms_limits(
    app: Flask, client: FlaskClient, agency: Agency
) -> None:
    settings = app.config["TATTLETALE"]
    page = reply_page(client, "A tall man.")
    too_large = client.post(
        REPLY_FILES,
        headers=tus_headers(page, **{"Upload-Length": str(settings.tip_attachment_max_bytes + 1)}),
    )
    assert too_large.status_code == 413
    assert "largest accepted" in too_large.get_json()["title"]
    empty = client.post(REPLY_FILES, headers=tus_headers(page, **{"Upload-Length": "0"}))
    assert empty.status_code == 422
    for _ in range(settings.tip_attachments_max):
        start(client, page, 1000)
    one_more = client.post(REPLY_FILES, headers=tus_headers(page, **{"Upload-Length": "1000"}))
    assert one_more.status_code == 422
    assert f"at most {settings.tip_attachments_max} files" in one_more.get_json()["title"]
    start(client, reply_page(client, "Another tip."), 100)  # another answer's count is its own


@pytest.mark.parametrize("storage_location", ["s3"], indirect=True)
def test_an_answers_files_are_staged_on_the_store_with_s3(
    app: Flask, client: FlaskClient, agency: Agency, storage_location: tuple[str, str | None]
) -> None:
    page = reply_page(client, "A white van.")
    location = start(client, page, len(MP4_HEAD) + 10)
    assert patch(client, tus_headers(page), location, 0, MP4_HEAD).status_code == 204
    row = db.session.scalar(sa.select(TipAttachment))
    assert row is not None and row.staging["upload_id"] and row.offset == len(MP4_HEAD)
