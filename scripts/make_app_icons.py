"""Draw the installable inbox's icons (run once; the PNGs are committed under helpdesk/static/inbox/icons).

Three files: 192 and 512 px "any" icons (a rounded teal tile with a white C, as in the favicon) and a
512 px maskable one, whose mark stays inside the central 80 % safe zone because a phone may crop it to
a circle or a squircle.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parents[1] / "helpdesk" / "static" / "inbox" / "icons"
TEAL = (11, 114, 133, 255)
WHITE = (255, 255, 255, 255)


def draw_c(draw: ImageDraw.ImageDraw, size: int, box_scale: float) -> None:
    """A thick "C" ring centred in the image, ``box_scale`` of its width across."""
    span = size * box_scale
    left = (size - span) / 2
    box = (left, left, left + span, left + span)
    draw.arc(box, start=45, end=315, fill=WHITE, width=max(4, int(span * 0.2)))


def icon(size: int, maskable: bool) -> Image.Image:
    """One icon: a rounded tile for "any", a full-bleed square for "maskable"."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if maskable:
        draw.rectangle((0, 0, size, size), fill=TEAL)
        draw_c(draw, size, 0.42)
    else:
        draw.rounded_rectangle((0, 0, size - 1, size - 1), radius=int(size * 0.22), fill=TEAL)
        draw_c(draw, size, 0.56)
    return image


def main() -> None:
    """Write the three PNGs."""
    OUT.mkdir(parents=True, exist_ok=True)
    icon(192, False).save(OUT / "icon-192.png", optimize=True)
    icon(512, False).save(OUT / "icon-512.png", optimize=True)
    icon(512, True).save(OUT / "icon-maskable-512.png", optimize=True)


if __name__ == "__main__":
    main()
