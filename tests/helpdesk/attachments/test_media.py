"""What a file is comes from its bytes; thumbnails are new JPEGs with no metadata."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from helpdesk.attachments.media import MediaRejected, analyse, safe_name, sniff_mime
from tests.helpdesk.attachments.files import PDF, gps_of, jpeg, mp4, png, truncated_jpeg


def test_pdf_bytes_named_like_a_photo_are_a_file():
    analysed = analyse(PDF, "image")
    assert (analysed.kind, analysed.mime_type, analysed.thumbnail) == ("file", "application/pdf", None)
    assert safe_name("holiday.jpg", analysed.kind, analysed.mime_type) == "holiday.jpg"  # the name is only a name


def test_photo_bytes_sent_as_a_document_are_an_image():
    analysed = analyse(jpeg(320, 200), "file")
    assert (analysed.kind, analysed.mime_type, analysed.width, analysed.height) == ("image", "image/jpeg", 320, 200)


def test_a_sticker_stays_a_sticker_when_its_bytes_are_an_image():
    assert analyse(png(), "sticker").kind == "sticker"


def test_unknown_bytes_are_a_plain_file_never_html():
    analysed = analyse(b"<html><script>alert(1)</script></html>", "image")
    assert (analysed.kind, analysed.mime_type) == ("file", "application/octet-stream")


def test_the_thumbnail_carries_no_gps_position_nor_any_exif():
    original = jpeg(1600, 1200, gps=True)
    assert gps_of(original)  # the camera's position is in the original
    analysed = analyse(original)
    assert analysed.thumbnail is not None
    assert gps_of(analysed.thumbnail) == {}
    with Image.open(io.BytesIO(analysed.thumbnail)) as thumb:
        assert thumb.format == "JPEG" and max(thumb.size) == 480
        assert not thumb.getexif() and "exif" not in thumb.info and "icc_profile" not in thumb.info


def test_a_transparent_png_gets_a_jpeg_thumbnail():
    analysed = analyse(png(1000, 500))
    with Image.open(io.BytesIO(analysed.thumbnail)) as thumb:
        assert thumb.format == "JPEG" and thumb.size == (480, 240)


def test_a_truncated_photo_is_refused_with_the_reason():
    with pytest.raises(MediaRejected, match="truncated or damaged"):
        analyse(truncated_jpeg())


def test_an_empty_file_is_refused():
    with pytest.raises(MediaRejected, match="empty"):
        analyse(b"")


def test_ogg_voice_and_mp4_are_audio_and_video():
    assert sniff_mime(b"OggS\x00\x02" + b"\x00" * 80) == "audio/ogg"
    mp4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64
    assert analyse(mp4).kind == "video"


def test_a_video_gets_its_first_frame_as_poster_with_its_size_and_duration():
    video = mp4(320, 240, seconds=2.0)
    found = analyse(video, "video")
    assert (found.kind, found.mime_type, found.width, found.height) == ("video", "video/mp4", 320, 240)
    assert found.duration == pytest.approx(2.0, abs=0.15)
    with Image.open(io.BytesIO(found.thumbnail)) as poster:
        assert (poster.format, poster.size) == ("JPEG", (320, 240))
        corner, middle = poster.getpixel((10, 10)), poster.getpixel((200, 150))
    assert min(corner) > 200  # the first frame's bright corner, not a later frame
    assert abs(middle[1] - 160) < 30 and middle[0] < 80


def test_a_video_ffmpeg_cannot_read_is_kept_without_poster_or_figures():
    header_only = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 4000
    found = analyse(header_only, "video")
    assert (found.kind, found.thumbnail, found.width, found.duration) == ("video", None, None, None)
    cut = mp4()[:300]  # a download cut short: the header of a real video, no frames
    assert analyse(cut, "video").thumbnail is None


@pytest.mark.parametrize(("given", "expected"), [
    ("../../etc/passwd", "passwd.jpg"), ("C:\\Users\\me\\bill.pdf", "bill.pdf"), ("\x00evil\r\n.pdf", "evil.pdf"),
    (None, "image.jpg"), ("photo", "photo.jpg"),
])
def test_names_are_made_safe(given, expected):
    assert safe_name(given, "image", "image/jpeg") == expected



def _photo(width: int, height: int, orientation: int | None = None) -> bytes:
    """A phone-like JPEG: its left half red, right half blue, optionally with an EXIF orientation."""
    image = Image.new("RGB", (width, height), (220, 30, 30))
    image.paste((30, 30, 220), (width // 2, 0, width, height))
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


def test_a_phone_photo_is_thumbnailed_from_a_reduced_decode_at_the_full_thumbnail_size():
    analysed = analyse(_photo(1280, 960))
    assert (analysed.width, analysed.height) == (1280, 960)  # the original's own size, not the decode's
    with Image.open(io.BytesIO(analysed.thumbnail)) as thumb:
        assert thumb.size == (480, 360)
        assert thumb.convert("RGB").getpixel((60, 180))[0] > 180 and thumb.convert("RGB").getpixel((420, 180))[2] > 180


def test_a_photo_taken_sideways_gets_an_upright_thumbnail():
    # orientation 6: the camera was turned; shown upright, the landscape pixels become a portrait whose
    # top is the original's left half (red)
    analysed = analyse(_photo(1280, 960, orientation=6))
    with Image.open(io.BytesIO(analysed.thumbnail)) as thumb:
        assert thumb.size == (360, 480)
        rgb = thumb.convert("RGB")
        assert rgb.getpixel((180, 60))[0] > 180 and rgb.getpixel((180, 420))[2] > 180


def test_a_truncated_phone_photo_is_refused_though_decoded_at_a_reduced_scale():
    whole = _photo(1280, 960)
    with pytest.raises(MediaRejected, match="truncated or damaged"):
        analyse(whole[: len(whole) * 2 // 3])
