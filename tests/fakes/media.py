"""Small real files for tests: images Pillow can open, and headers that content sniffers recognise.

Every function returns the bytes of one file, made fresh, so a test can compare what a platform fake
received with exactly what it handed CareDesk.
"""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

#: a GPS position (Hà Nội) written into the EXIF of ``jpeg_bytes(..., with_gps_exif=True)``
GPS_LATITUDE = (21, 1, 42.0)
GPS_LONGITUDE = (105, 51, 12.0)


def _image(width: int, height: int) -> Image.Image:
    # a gradient rather than a flat colour, so encoders cannot shrink it to nothing
    image = Image.new("RGB", (width, height))
    image.putdata([((x * 255) // max(width, 1), (y * 255) // max(height, 1), 128)
                   for y in range(height) for x in range(width)])
    return image


def png_bytes(width: int = 32, height: int = 24) -> bytes:
    """A valid PNG of the given size."""
    buffer = io.BytesIO()
    _image(width, height).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(width: int = 32, height: int = 24, with_gps_exif: bool = False) -> bytes:
    """A valid JPEG of the given size; with ``with_gps_exif`` its EXIF carries a GPS location."""
    buffer = io.BytesIO()
    image = _image(width, height)
    if not with_gps_exif:
        image.save(buffer, format="JPEG", quality=90)
        return buffer.getvalue()
    exif = Image.Exif()
    exif[0x010F] = "CareDesk Test Camera"  # Make
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = GPS_LATITUDE
    gps[3] = "E"
    gps[4] = GPS_LONGITUDE
    image.save(buffer, format="JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def pdf_bytes(text: str = "CareDesk test manual") -> bytes:
    """A one-page PDF with ``text`` on it (ASCII), with a correct cross-reference table."""
    stream = f"BT /F1 18 Tf 40 100 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 144] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _ogg_page(payload: bytes, sequence: int, flags: int) -> bytes:
    header = b"OggS" + struct.pack("<BBqIII", 0, flags, 0, 0x43617265, sequence, 0)
    page = header + bytes([1, len(payload)]) + payload
    # Ogg's CRC-32: polynomial 0x04C11DB7, no reflection, computed with the CRC field zeroed
    crc = 0
    for byte in page:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) & 0xFFFFFFFF if crc & 0x80000000 else (crc << 1) & 0xFFFFFFFF
    return page[:22] + struct.pack("<I", crc) + page[26:]


def ogg_bytes() -> bytes:
    """The first two pages of an Ogg Opus voice note (OpusHead and OpusTags), as Telegram voice is."""
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, 312, 48000, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", 8) + b"CareDesk" + struct.pack("<I", 0)
    return _ogg_page(head, 0, 0x02) + _ogg_page(tags, 1, 0x00)


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def mp4_bytes() -> bytes:
    """An ISO-BMFF (MP4) header: an ``ftyp`` box, an empty ``moov`` with its ``mvhd``, and ``mdat``."""
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2avc1mp41")
    mvhd = _box(b"mvhd", bytes(4) + struct.pack(">IIII", 0, 0, 1000, 2000) + bytes(80))
    mdat = _box(b"mdat", zlib.compress(b"caredesk" * 8))
    return ftyp + _box(b"moov", mvhd) + mdat
