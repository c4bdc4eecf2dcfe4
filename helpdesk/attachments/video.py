"""A video's poster frame, duration and dimensions, read from its bytes with PyAV (the ``av`` wheel
bundles ffmpeg's libraries: nothing to install on the machine). Blocking and CPU-bound: callers run
it off the event loop (``helpdesk.core.aio.run_in_background``, through ``media.analyse``).

A phone records a portrait video as landscape frames plus a rotation in the stream's display matrix
(side data); the poster and the dimensions are given as the video is shown, turned by it.

Only the container's header and the first decodable frame are read, never the whole video, and a
file ffmpeg cannot make sense of gives nothing (the video is kept all the same; the platform's own
preview, if it sent one, becomes its poster then).
"""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass

import av
from PIL import Image

log = logging.getLogger(__name__)

#: packets read looking for the first frame before giving up (a frame comes within a few normally)
MAX_PACKETS = 240
#: the longest duration believed (a header can claim anything); longer is left unknown
MAX_DURATION_S = 7 * 24 * 3600.0


@dataclass(frozen=True)
class VideoInfo:
    """What was read of a video (each part None when it could not be)."""

    width: int | None
    height: int | None
    duration: float | None
    #: the first frame, as an RGB image (the caller makes the thumbnail)
    poster: Image.Image | None


def probe_video(data: bytes, *, poster: bool = True, max_pixels: int) -> VideoInfo | None:
    """Read a video's dimensions, duration and (with ``poster``) first frame; None when its bytes are
    not a video ffmpeg can read. Frames of more than ``max_pixels`` are not decoded."""
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            width = stream.codec_context.width or None
            height = stream.codec_context.height or None
            duration = _duration(container, stream)
            image = None
            if poster and width and height and width * height <= max_pixels:
                image, turn = _first_frame(container, stream)
                if turn in (90, 270):  # shown on its side: the viewer's width is the frame's height
                    width, height = height, width
            return VideoInfo(width, height, duration, image)
    except (av.FFmpegError, OSError, ValueError, MemoryError) as exc:
        log.info("a video could not be read: %s", exc)
        return None


def _duration(container, stream) -> float | None:
    """Seconds, from the stream's own duration, else the container's; None when neither is sane."""
    seconds = None
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        seconds = container.duration / av.time_base
    if seconds is None or not math.isfinite(seconds) or not 0 < seconds <= MAX_DURATION_S:
        return None
    return round(seconds, 3)


def _first_frame(container, stream) -> tuple[Image.Image | None, int]:
    """The first frame, turned upright by the video's display matrix, and that turn (degrees
    counter-clockwise: 0, 90, 180 or 270)."""
    stream.thread_type = "NONE"  # one frame: ffmpeg's frame threads would only start and stop
    for count, packet in enumerate(container.demux(stream)):
        if count >= MAX_PACKETS:
            return None, 0
        for frame in packet.decode():
            return _upright(frame.to_image(), _rotation(frame))
    return None, 0


def _rotation(frame) -> int:
    """The display matrix's rotation of ``frame`` in degrees counter-clockwise, to the nearest
    quarter turn (0 without one; a matrix ffmpeg cannot read is ignored)."""
    try:
        degrees = float(frame.rotation or 0)
    except (AttributeError, TypeError, ValueError):
        return 0
    if not math.isfinite(degrees):
        return 0
    return int(round(degrees / 90)) % 4 * 90


def _upright(image: Image.Image, turn: int) -> tuple[Image.Image, int]:
    """``image`` turned ``turn`` degrees counter-clockwise (as a player shows the frame)."""
    if turn == 0:
        return image, 0
    transpose = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180,
                 270: Image.Transpose.ROTATE_270}[turn]
    return image.transpose(transpose), turn
