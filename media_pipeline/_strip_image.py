"""Decode one photo and write its bare pixels: run as a child process by
``media_pipeline.attachments.strip_image`` (``python -I _strip_image.py FORMAT SRC DST
MAX_PIXELS``), under an address-space limit and a wall clock.

Prints one JSON object: ``{"width": w, "height": h}`` or ``{"refused": reason}``. Any
other failure is a non-zero exit with the traceback on stderr.

Imports only the standard library and Pillow: it runs with an empty environment.
"""

from __future__ import annotations

import io
import json
import sys
import warnings

from PIL import Image, ImageCms, ImageFile, ImageOps

_PILLOW_FORMATS = {"jpeg": "JPEG", "png": "PNG", "heic": "HEIF"}


def _refuse(reason: str) -> int:
    print(json.dumps({"refused": reason}))
    return 0


def _to_srgb(image: Image.Image, icc: bytes | None, mode: str) -> Image.Image:
    """Pixels in sRGB: an iPhone's Display P3 photo keeps its colours once its ICC
    profile (which names the device) is dropped."""
    converted = image.convert(mode) if image.mode != mode else image
    if not icc:
        return converted
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        result = ImageCms.profileToProfile(
            converted, source, ImageCms.createProfile("sRGB"), outputMode=mode
        )
    except (ImageCms.PyCMSError, OSError, ValueError):
        return converted  # a broken profile: the pixels as they are
    return result if result is not None else converted


def main(argv: list[str]) -> int:
    fmt, source, output, max_pixels_text = argv
    max_pixels = int(max_pixels_text)
    # Pillow's own bomb check as a second line behind ours, and never a "best effort"
    # decode of a truncated file: a damaged photo is refused, not half grey.
    Image.MAX_IMAGE_PIXELS = max_pixels
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    if fmt == "heic":
        import pillow_heif

        pillow_heif.register_heif_opener(thumbnails=False)
    try:
        with Image.open(source, formats=[_PILLOW_FORMATS[fmt]]) as image:
            width, height = image.size
            if width * height > max_pixels:
                return _refuse(f"the image has more than {max_pixels / 1e6:.0f} million pixels")
            image.load()
            icc = image.info.get("icc_profile")
            upright = ImageOps.exif_transpose(image) or image
            has_alpha = fmt == "png" and (
                "A" in upright.getbands() or "transparency" in upright.info
            )
            mode = "RGBA" if has_alpha else "RGB"
            pixels = _to_srgb(upright, icc, mode)
            # A new image from the bare pixels: no info dict, so no EXIF, XMP, ICC,
            # text chunk or comment can reach the encoder.
            clean = Image.frombytes(mode, pixels.size, pixels.tobytes())
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return _refuse(f"the image has more than {max_pixels / 1e6:.0f} million pixels")
    except (Image.UnidentifiedImageError, SyntaxError, EOFError, OSError, ValueError):
        return _refuse("the image is damaged or incomplete")
    if fmt == "png":
        clean.save(output, "PNG")
    else:
        clean.save(output, "JPEG", quality=90)
    print(json.dumps({"width": clean.width, "height": clean.height}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
