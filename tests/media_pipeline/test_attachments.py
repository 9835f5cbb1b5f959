"""Tip attachments in the media pipeline: what a file is by its bytes, and the
derivatives read back with Pillow and ffprobe carry no GPS, no device and no
metadata, upright."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import ExifTags, Image

from media_pipeline import Limits, Rejected
from media_pipeline.attachments import sniff_file, strip_image, strip_video

GPS_IFD = ExifTags.IFD.GPSInfo
MAX_PIXELS = 100_000_000  # the portal's default (TATTLETALE_TIP_IMAGE_MAX_PIXELS)


def phone_photo(path: Path, fmt: str = "JPEG") -> Path:
    """A 64x32 photo as a phone writes it: make, model, serial, GPS, orientation 6
    (the camera was turned: the picture is shown 32x64), an ICC profile, XMP."""
    image = Image.new("RGB", (64, 32), (200, 30, 30))
    image.paste((30, 30, 200), (0, 0, 32, 32))  # left half blue: tells the rotation
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Apple"
    exif[ExifTags.Base.Model] = "iPhone 15 Pro"
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.BodySerialNumber] = "F2LX1234ABCD"
    exif[GPS_IFD] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (40.0, 44.0, 54.36),
        ExifTags.GPS.GPSLongitudeRef: "W",
        ExifTags.GPS.GPSLongitude: (73.0, 59.0, 8.5),
    }
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><dc:creator>Jane Doe</dc:creator></x:xmpmeta>'
    kwargs = {"exif": exif.tobytes(), "icc_profile": icc}
    if fmt == "JPEG":
        kwargs["xmp"] = xmp
    image.save(path, fmt, **kwargs)
    return path


def test_files_are_known_by_their_bytes_not_their_names(tmp_path: Path, phone_mov: Path) -> None:
    photo = phone_photo(tmp_path / "video.mp4")  # a JPEG named like a video
    assert sniff_file(photo) == "jpeg"
    assert sniff_file(shutil.copy(phone_mov, tmp_path / "photo.jpg")) == "mov"
    pdf = tmp_path / "IMG_0001.jpg"
    pdf.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")
    with pytest.raises(Rejected, match="PDF document"):
        sniff_file(pdf)
    script = tmp_path / "IMG_0002.jpg"
    script.write_text("#EXTM3U\n#EXT-X-VERSION:3\nhttp://example.com/a.ts\n")
    with pytest.raises(Rejected, match="text file"):
        sniff_file(script)


def test_photo_derivative_is_upright_with_no_metadata(tmp_path: Path) -> None:
    source = phone_photo(tmp_path / "photo.jpg")
    with Image.open(source) as original:  # the test input really has it all
        assert original.getexif().get_ifd(GPS_IFD)
        assert original.info.get("icc_profile") and original.info.get("xmp")
    made = strip_image(
        str(source), str(tmp_path / "view"), "jpeg", max_pixels=MAX_PIXELS, limits=Limits()
    )
    assert made.content_type == "image/jpeg" and (made.width, made.height) == (32, 64)
    with Image.open(made.path) as derivative:
        assert derivative.format == "JPEG" and derivative.size == (32, 64)
        assert not dict(derivative.getexif())
        assert "icc_profile" not in derivative.info and "xmp" not in derivative.info
        assert "exif" not in derivative.info
        # Orientation 6 turns the picture clockwise: the blue left half is on top.
        top = derivative.getpixel((16, 8))
        assert top[2] > 150 and top[0] < 100, top
    raw = Path(made.path).read_bytes()
    for marker in (b"Apple", b"iPhone", b"F2LX1234ABCD", b"Jane Doe", b"Exif\x00\x00"):
        assert marker not in raw


def test_png_derivative_stays_png_without_its_text_chunks(tmp_path: Path) -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Jane Doe")
    source = tmp_path / "screenshot.png"
    Image.new("RGBA", (40, 20), (10, 200, 10, 255)).save(source, pnginfo=info)
    made = strip_image(
        str(source), str(tmp_path / "view"), "png", max_pixels=MAX_PIXELS, limits=Limits()
    )
    assert made.content_type == "image/png"
    assert b"Jane Doe" not in Path(made.path).read_bytes()
    with Image.open(made.path) as derivative:
        assert derivative.size == (40, 20) and not derivative.text


def test_heic_derivative_is_a_stripped_jpeg(tmp_path: Path) -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    source = phone_photo(tmp_path / "IMG_0001.HEIC", fmt="HEIF")
    assert sniff_file(source) == "heic"
    made = strip_image(
        str(source), str(tmp_path / "view"), "heic", max_pixels=MAX_PIXELS, limits=Limits()
    )
    with Image.open(made.path) as derivative:
        assert derivative.format == "JPEG" and derivative.size == (32, 64)
        assert not dict(derivative.getexif()) and "icc_profile" not in derivative.info
    assert b"iPhone" not in Path(made.path).read_bytes()


def test_truncated_photo_and_bomb_are_refused(tmp_path: Path) -> None:
    whole = phone_photo(tmp_path / "photo.jpg").read_bytes()
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(Rejected, match="damaged or incomplete"):
        strip_image(
            str(truncated), str(tmp_path / "a"), "jpeg", max_pixels=MAX_PIXELS, limits=Limits()
        )
    # 20000 x 20000 = 400 million pixels in a few hundred kB: a decompression bomb.
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20000, 20000)).save(bomb)
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(Rejected, match="more than 100 million pixels"):
        strip_image(str(bomb), str(tmp_path / "b"), "png", max_pixels=MAX_PIXELS, limits=Limits())


def ffprobe(path: str) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", "-show_format", "-show_streams", path],
        check=True,
        capture_output=True,
    ).stdout
    return json.loads(out)


@pytest.fixture(scope="module")
def phone_mov(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MOV as an iPhone writes it: location (``©xyz``), make, model, a title."""
    path = tmp_path_factory.mktemp("mov") / "IMG_0002.MOV"
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2",
            "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
            "-map", "0", "-map", "1",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-c:a", "aac",
            "-metadata", "location=+40.7484-073.9857/",
            "-metadata", "com.apple.quicktime.make=Apple",
            "-metadata", "com.apple.quicktime.model=iPhone 15 Pro",
            "-metadata", "title=Jane Doe",
            "-movflags", "use_metadata_tags",
            str(path),
        ],
        check=True,
    )  # fmt: skip
    return path


def test_video_derivative_has_only_picture_and_sound_and_no_location(
    tmp_path: Path, phone_mov: Path
) -> None:
    before = ffprobe(str(phone_mov))
    assert "location" in json.dumps(before["format"].get("tags", {}))  # the input has it
    assert sniff_file(phone_mov) == "mov"
    made = strip_video(str(phone_mov), str(tmp_path / "view"), limits=Limits())
    assert made.content_type == "video/mp4" and (made.width, made.height) == (320, 240)
    after = ffprobe(made.path)
    assert [s["codec_type"] for s in after["streams"]] == ["video", "audio"]
    assert after["format"]["format_name"].startswith("mov,mp4")
    for stream in after["streams"]:
        tags = dict(stream.get("tags", {}))
        # Our own encoder's name (x264 in its bitstream) is all that is said of a tool.
        assert tags.pop("encoder", "Lavc libx264") == "Lavc libx264"
        assert set(tags) <= {"language", "handler_name", "vendor_id"}
    tags = after["format"].get("tags", {})
    assert not {k for k in tags if k not in ("major_brand", "minor_version", "compatible_brands")}
    raw = Path(made.path).read_bytes()
    for marker in (b"\xa9xyz", b"+40.7484", b"iPhone", b"Apple", b"Jane Doe"):
        assert marker not in raw


def test_a_photo_renamed_mov_is_refused_by_the_video_probe(tmp_path: Path) -> None:
    fake = tmp_path / "clip.mov"
    fake.write_bytes(b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  " + b"\x00" * 200)
    with pytest.raises(Rejected):
        strip_video(str(fake), str(tmp_path / "view"), limits=Limits())
