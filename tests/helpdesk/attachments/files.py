"""Real files for attachment tests, made with Pillow: photos (one with a GPS position in its EXIF),
a truncated photo, a PNG with transparency, and a PDF."""

from __future__ import annotations

import io

from PIL import ExifTags, Image

#: a minimal but well-formed PDF (what the magic numbers see: ``%PDF-``)
PDF = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
       b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")


def jpeg(width: int = 640, height: int = 480, *, color: tuple[int, int, int] = (200, 40, 40),
         gps: bool = False) -> bytes:
    """A JPEG photo; with ``gps``, its EXIF carries a position (Ho Chi Minh City) and a camera model."""
    image = Image.new("RGB", (width, height), color)
    for x in range(0, width, 16):  # some detail, so it is a real photo-sized file
        for y in range(0, height, 16):
            image.putpixel((x, y), (x % 256, y % 256, 90))
    out = io.BytesIO()
    if gps:
        exif = Image.Exif()
        exif[ExifTags.Base.Model] = "CareDesk Test Camera"
        position = exif.get_ifd(ExifTags.IFD.GPSInfo)
        position[ExifTags.GPS.GPSLatitudeRef] = "N"
        position[ExifTags.GPS.GPSLatitude] = (10.0, 46.0, 30.0)
        position[ExifTags.GPS.GPSLongitudeRef] = "E"
        position[ExifTags.GPS.GPSLongitude] = (106.0, 42.0, 10.0)
        image.save(out, "JPEG", quality=90, exif=exif)
    else:
        image.save(out, "JPEG", quality=90)
    return out.getvalue()


def png(width: int = 300, height: int = 200) -> bytes:
    """A PNG with an alpha channel."""
    out = io.BytesIO()
    Image.new("RGBA", (width, height), (0, 120, 255, 128)).save(out, "PNG")
    return out.getvalue()


def truncated_jpeg() -> bytes:
    """A photo cut off half way (an interrupted upload)."""
    whole = jpeg(800, 600)
    return whole[: len(whole) // 2]


def gps_of(data: bytes) -> dict:
    """The GPS entries of an image's EXIF (empty when it has none)."""
    with Image.open(io.BytesIO(data)) as image:
        return dict(image.getexif().get_ifd(ExifTags.IFD.GPSInfo))


def mp4(width: int = 320, height: int = 240, *, seconds: float = 2.0, fps: int = 10,
        color: tuple[int, int, int] = (30, 160, 60), rotation: int = 0) -> bytes:
    """A real H.264 MP4 made with PyAV: ``seconds`` of frames of one colour (the first one a little
    brighter in its top-left corner, so a poster can be told from a blank picture); ``rotation``
    (degrees counter-clockwise) goes in the stream's display matrix, as a phone records a portrait
    video."""
    import av

    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        for index in range(int(seconds * fps)):
            image = Image.new("RGB", (width, height), color)
            if index == 0:
                image.paste((250, 250, 250), (0, 0, width // 4, height // 4))
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()
