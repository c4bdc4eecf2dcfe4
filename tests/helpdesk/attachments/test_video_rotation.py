"""A phone's portrait video: landscape frames with a rotation in the stream's display matrix. Its
poster and dimensions are given as a player shows it, not as the frames are stored."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.helpdesk.attachments.conftest import customer_messages
from tests.helpdesk.attachments.files import mp4

BRIGHT = 200


def bright_corners(image: Image.Image) -> set[str]:
    """Which corners of the poster are the first frame's bright patch (the frame's top-left)."""
    w, h = image.size
    corners = {"top-left": (8, 8), "top-right": (w - 8, 8), "bottom-left": (8, h - 8), "bottom-right": (w - 8, h - 8)}
    return {name for name, xy in corners.items() if min(image.getpixel(xy)) > BRIGHT}


@pytest.mark.parametrize(("rotation", "size", "corner"), [
    (-90, (240, 320), "top-right"),   # how phones record portrait: turned a quarter clockwise
    (90, (240, 320), "bottom-left"),
    (180, (320, 240), "bottom-right"),
    (0, (320, 240), "top-left"),
])
async def test_a_rotated_videos_poster_and_size_are_turned_upright(drop_client, host, rotation, size, corner):
    video = mp4(320, 240, seconds=1.0, rotation=rotation)
    url = host.serve(f"cdn/rotated{rotation}.mp4", video, "video/mp4")
    response = await drop_client.post("/webhooks/file_drop", json={
        "sender_id": "cust-portrait", "id": f"v-rot{rotation}", "attachments": [{"kind": "video", "url": url}]})
    assert response.status_code == 200
    await drop_client.settle()
    headers = await drop_client.login()
    _, [message] = await customer_messages(drop_client, headers)
    [shown] = message["attachments"]
    assert shown["status"] == "stored" and (shown["width"], shown["height"]) == size
    poster = await drop_client.get(shown["thumbnail_url"], headers=headers)
    assert poster.status_code == 200
    with Image.open(io.BytesIO(poster.content)) as image:
        assert image.size == size and bright_corners(image) == {corner}
