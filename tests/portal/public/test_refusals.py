"""Why a file was refused, in the tipster's language: the media pipeline is made to
refuse real files (too long, too large a frame, cut short, a codec we do not take, a
damaged or oversized photo) and each reason it gives must be one the portal knows,
with a stable code, and read in Spanish with the file's own values in it; staff read
the same row in English. The Spanish is written here as a reader expects it, not
taken from the catalog."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from config import Settings
from media_pipeline import Limits, Rejected
from media_pipeline.attachments import strip_image, strip_video
from media_pipeline.probe import probe
from portal.extensions import db
from portal.models import Agency, Role, TipAttachment, User
from portal.services.refusals import REASONS, refusal_code, refusal_text
from tests.media_pipeline.test_attachments import phone_photo
from tests.portal.conftest import run_jobs
from tests.portal.public.test_attachments import form_fields, receipt_of, send

SPANISH = "/agencies/springfield/tip?lang=es"


def clip(path: Path, *, seconds: int = 3, codec: str = "libx264", size: str = "320x240") -> Path:
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}",
            "-c:v", codec, "-pix_fmt", "rgb24" if codec == "png" else "yuv420p", str(path),
        ],
        check=True,
        timeout=120,
    )  # fmt: skip
    return path


def refused_by(action: Callable[[], object]) -> str:
    with pytest.raises(Rejected) as caught:
        action()
    return caught.value.reason


@pytest.fixture(scope="module")
def reasons(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """What the pipeline says of each file, by what is wrong with it."""
    tmp = tmp_path_factory.mktemp("refused")
    three_seconds = clip(tmp / "long.mp4")
    cut_short = tmp / "cut.mp4"
    cut_short.write_bytes(three_seconds.read_bytes()[: three_seconds.stat().st_size // 2])
    other_codec = clip(tmp / "png.mov", seconds=1, codec="png")
    photo = phone_photo(tmp / "IMG_0001.jpg")
    damaged = tmp / "damaged.jpg"
    damaged.write_bytes(photo.read_bytes()[:300])
    work = tmp / "out"
    work.mkdir()
    base = str(work / "view")
    return {
        "too_long": refused_by(
            lambda: strip_video(str(three_seconds), base, limits=Limits(max_duration_s=1.0))
        ),
        "frame_size": refused_by(
            lambda: strip_video(str(three_seconds), base, limits=Limits(max_width=100))
        ),
        "file_too_large": refused_by(lambda: probe(three_seconds, Limits(max_file_bytes=1000))),
        "incomplete": refused_by(lambda: strip_video(str(cut_short), base, limits=Limits())),
        "codec": refused_by(lambda: strip_video(str(other_codec), base, limits=Limits())),
        "image_damaged": refused_by(
            lambda: strip_image(str(damaged), base, "jpeg", max_pixels=10**8, limits=Limits())
        ),
        "image_pixels": refused_by(
            lambda: strip_image(str(photo), base, "jpeg", max_pixels=100, limits=Limits())
        ),
    }


# What a Spanish reader sees, written from the translation's wording; the values are
# the file's own (the pipeline's numbers and names).
SPANISH_READING = {
    "too_long": r"el vídeo dura 3 s, más que el límite de 1 s",
    "frame_size": r"el tamaño de imagen 320x240 supera el límite de 100x4320",
    "file_too_large": r"el archivo ocupa [\d.]+ KB, más que el límite de 1.0 KB",
    "incomplete": r"el archivo está incompleto o dañado .*",
    "codec": r"el códec (de vídeo )?png no se admite",
    "image_damaged": r"la imagen está dañada o incompleta",
    "image_pixels": r"la imagen tiene más de 0 millones de píxeles",
}


def test_every_reason_the_pipeline_gives_has_a_code_and_reads_in_spanish(
    app: Flask, reasons: dict[str, str]
) -> None:
    for problem, reason in reasons.items():
        code = refusal_code(reason)
        assert code != "other", (problem, reason)
        if problem != "codec":  # ffprobe may refuse the decoder before we see the stream
            assert code == problem, (problem, reason)
        with app.app_context(), app.test_request_context("/", query_string={"lang": "es"}):
            app.preprocess_request()
            spanish = refusal_text(reason)
        assert re.fullmatch(SPANISH_READING[problem], spanish), (problem, reason, spanish)
        with app.app_context(), app.test_request_context("/staff/tips"):
            app.preprocess_request()
            assert refusal_text(reason) == reason  # staff read it as stored


def test_codes_are_unique_and_each_pattern_reads_only_its_reason(app: Flask) -> None:
    codes = [reason.code for reason in REASONS]
    assert len(codes) == len(set(codes))
    assert refusal_code("something the pipeline never said") == "other"
    with app.app_context(), app.test_request_context("/", query_string={"lang": "es"}):
        app.preprocess_request()
        assert refusal_text("something the pipeline never said") == (
            "something the pipeline never said"
        )
        # Every listed reason has its Spanish: none reads as its English.
        for reason in REASONS:
            sample = reason.english.format(**{name: "X" for name in reason.pattern.groupindex})
            assert refusal_code(sample) == reason.code, sample
            assert refusal_text(sample) != sample, reason.code


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, tip_video_max_seconds=1)


def test_a_video_refused_by_the_pipeline_is_explained_to_the_tipster_in_spanish(
    app: Flask,
    client: FlaskClient,
    agency: Agency,
    tmp_path: Path,
    users: dict[Role, User],
    signed_in: Callable[[User], FlaskClient],
) -> None:
    video = clip(tmp_path / "VID_0001.mp4").read_bytes()
    response = send(
        client, form_fields(client, SPANISH), [(video, "VID_0001.mp4", "video/mp4")], path=SPANISH
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page
    assert run_jobs() == ["succeeded"]
    row = db.session.scalar(sa.select(TipAttachment))
    assert row is not None and row.status == "refused"
    # The tipster comes back with the receipt, in Spanish.
    number, passphrase = receipt_of(page)
    check = "/tips/check?lang=es"
    opened = client.post(
        check,
        data={
            "number": number,
            "passphrase": passphrase,
            "csrf_token": form_fields(client, check)["csrf_token"],
        },
    )
    assert opened.status_code == 200
    thread_page = opened.get_data(as_text=True)
    assert "Vídeo 1" in thread_page
    assert "no admitido: el vídeo dura 3 s, más que el límite de 1 s" in thread_page
    # Staff read the same reason in English.
    staff = signed_in(users[Role.SUPERVISOR])
    assert row.tip is not None
    staff_page = staff.get(f"/staff/tips/{row.tip.public_id}").get_data(as_text=True)
    assert "the video is 3 s long, over the limit of 1 s" in staff_page


def test_what_the_first_bytes_say_has_a_code_too() -> None:
    from media_pipeline.attachments import sniff_format

    codes = {}
    for head, expected in [
        (b"", "empty"),
        (b"%PDF-1.4", "pdf"),
        (b"GIF89a", "gif"),
        (b"PK\x03\x04", "zip"),
        (b"MZ\x90\x00", "program"),
        (b"plain text\n", "text"),
        (b"\x00\x01\x02", "unknown_type"),
    ]:
        codes[expected] = refusal_code(refused_by(lambda head=head: sniff_format(head)))
    assert codes == {code: code for code in codes}
