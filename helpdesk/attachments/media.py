"""What a file is, decided from its bytes, and its thumbnail: pure, blocking functions that callers
run in a thread (``anyio.to_thread``).

The type comes from the file's magic numbers (``filetype``), never from its name or from what the
sender claimed: a ``.jpg`` name on PDF bytes is a file. Images are opened with Pillow, which also
proves they are whole (a truncated image is refused) and gives their dimensions; their thumbnail is
re-encoded as a new JPEG, so none of the original's metadata (EXIF, GPS position included) goes with it.
A video's dimensions, duration and poster (its first frame, thumbnailed the same way) are read with
PyAV (``video``).
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
import warnings
from dataclasses import dataclass

import filetype
from PIL import Image, ImageOps

from helpdesk.attachments.video import probe_video

#: raster images Pillow decodes and a browser shows; only these are served inline as images
RASTER_IMAGES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp"})
#: the longest side of a thumbnail, in pixels
THUMBNAIL_SIDE = 480
THUMBNAIL_MIME = "image/jpeg"
#: the most pixels an image may have (a small file can decode to gigabytes: a "decompression bomb")
MAX_PIXELS = 60_000_000

_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp",
               "image/bmp": "bmp", "video/mp4": "mp4", "video/quicktime": "mov", "video/webm": "webm",
               "audio/ogg": "ogg", "audio/mpeg": "mp3", "audio/mp4": "m4a", "audio/x-wav": "wav",
               "application/pdf": "pdf", "application/zip": "zip"}


class MediaRejected(ValueError):
    """The bytes cannot be kept as what they are (empty, damaged, too many pixels): ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Analysed:
    """What the bytes turned out to be."""

    kind: str
    mime_type: str
    size: int
    sha256: str
    width: int | None = None
    height: int | None = None
    #: a JPEG made afresh from the image (or a video's first frame), None when there is none
    thumbnail: bytes | None = None
    #: a video's length in seconds, when its container says
    duration: float | None = None


def sniff_mime(data: bytes) -> str:
    """The MIME type the bytes' magic numbers say, or ``application/octet-stream``."""
    guess = filetype.guess(data[:8192])
    return guess.mime if guess is not None else "application/octet-stream"


def kind_for(mime_type: str, claimed: str | None = None) -> str:
    """The attachment kind of a sniffed type: a sticker stays a sticker if it is an image, a voice
    note an audio; anything not an image, video or audio is a file."""
    if mime_type in RASTER_IMAGES:
        return "sticker" if claimed == "sticker" else "image"
    if mime_type.startswith("video/"):
        return "video"
    if mime_type.startswith("audio/") or mime_type == "video/ogg":
        return "audio"
    return "file"


def safe_name(name: str | None, kind: str, mime_type: str) -> str:
    """A file name fit for a header and a disk: no path, no control characters, at most 120 characters,
    with the extension of what the file really is when it had none."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in unicodedata.normalize("NFC", base) if unicodedata.category(ch)[0] != "C")
    base = re.sub(r"\s+", " ", base).strip(" .")[:120]
    extension = _EXTENSIONS.get(mime_type)
    if not base:
        base = kind
    if extension and "." not in base:
        base = f"{base}.{extension}"
    return base


def analyse(data: bytes, claimed_kind: str | None = None, *, thumbnail: bool = True) -> Analysed:
    """Decide what ``data`` is and make its thumbnail; MediaRejected when it cannot be kept."""
    if not data:
        raise MediaRejected("the file is empty (0 bytes)")
    mime = sniff_mime(data)
    kind = kind_for(mime, claimed_kind)
    digest = hashlib.sha256(data).hexdigest()
    if mime in RASTER_IMAGES:
        width, height, thumb = _image(data, thumbnail)
        return Analysed(kind, mime, len(data), digest, width, height, thumb)
    if kind == "video":
        return _video(data, mime, digest, thumbnail)
    return Analysed(kind, mime, len(data), digest)


def _video(data: bytes, mime: str, digest: str, thumbnail: bool) -> Analysed:
    """A video as what it is whatever ffmpeg makes of it; its dimensions, duration and poster when
    ffmpeg can read them (a video it cannot is still kept, as a file that plays or not in a browser)."""
    info = probe_video(data, poster=thumbnail, max_pixels=MAX_PIXELS)
    if info is None:
        return Analysed("video", mime, len(data), digest)
    poster = _thumbnail_or_none(info.poster) if info.poster is not None else None
    return Analysed("video", mime, len(data), digest, info.width, info.height, poster, info.duration)


def _image(data: bytes, thumbnail: bool) -> tuple[int, int, bytes | None]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise MediaRejected(f"the image is {width}x{height} pixels, more than {MAX_PIXELS} in all")
                if thumbnail and image.format == "JPEG":
                    # decode at the smallest scale (1/2 … 1/8) still at least the thumbnail's size, then
                    # resize the rest of the way: a fraction of the work of a full decode, which a thumbnail
                    # never needs (a phone photo of 1280x960 decodes at 640x480: 27 -> 9 ms of CPU for
                    # the analysis). Every byte is still decoded, so a truncated file still fails.
                    image.draft("RGB", (THUMBNAIL_SIDE, THUMBNAIL_SIDE))
                image.load()  # decodes every byte: a truncated or damaged file fails here
                return width, height, _thumbnail_or_none(image) if thumbnail else None
    except MediaRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MediaRejected("the image has too many pixels to open safely") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise MediaRejected(f"the image is truncated or damaged ({exc})") from None


def _thumbnail_or_none(image: Image.Image) -> bytes | None:
    # A whole image whose pixels Pillow cannot turn into a JPEG (an unusual mode, e.g. 16-bit
    # greyscale) is still kept; it just has no thumbnail.
    try:
        return make_thumbnail(image)
    except (OSError, ValueError):
        return None


def make_thumbnail(image: Image.Image) -> bytes:
    """A new JPEG of at most THUMBNAIL_SIDE pixels a side, turned upright as the camera's EXIF
    orientation says, and carrying no metadata at all."""
    # in place: without an orientation to apply, the copy it would make is a whole decoded image for nothing
    ImageOps.exif_transpose(image, in_place=True)
    upright = image
    upright.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    if upright.mode not in ("RGB", "L"):
        background = Image.new("RGB", upright.size, "white")
        rgba = upright.convert("RGBA")
        background.paste(rgba, mask=rgba.getchannel("A"))
        upright = background
    # only the pixels are copied: no EXIF, XMP, ICC or comment survives
    clean = Image.frombytes(upright.mode, upright.size, upright.tobytes())
    out = io.BytesIO()
    clean.save(out, "JPEG", quality=80, optimize=True)
    return out.getvalue()
