"""A web chat visitor's upload limit (10 files a minute) holds across processes when Redis is
configured: uploads through the app and from another OS process share one count in the real Redis;
without Redis, or with Redis away, each process counts on its own."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from helpdesk.webchat.upload_rate import KEY_PREFIX, UPLOAD_RATE, UploadRate
from tests.helpdesk.attachments.files import jpeg
from tests.helpdesk.webchat.test_webchat import TestClient, Webchat

#: another process counting uploads of a visitor through the same Redis: prints one 1/0 per upload
OTHER_PROCESS = """
import asyncio, sys
import redis.asyncio as aioredis
from helpdesk.webchat.upload_rate import UploadRate

async def main(url, visitor, times):
    client = aioredis.from_url(url, decode_responses=True)
    limiter = UploadRate(client)
    answers = [await limiter.allow(visitor) for _ in range(times)]
    print(" ".join(str(int(answer)) for answer in answers))
    await client.aclose()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


@pytest.fixture
def webchat_on_redis(make_settings, redis_url, tmp_path) -> Iterator[Webchat]:
    from helpdesk.app import create_app

    settings = make_settings(redis_url=redis_url, storage={"local_dir": str(tmp_path / "files")})
    with TestClient(create_app(settings)) as client:
        yield Webchat(client)


def upload(webchat: Webchat, token: str) -> int:
    return webchat.client.post(f"/webchat/attachments?token={token}",
                               files={"file": ("photo.jpg", jpeg(40, 30), "image/jpeg")}).status_code


def uploads_elsewhere(redis_url: str, visitor_id: str, times: int) -> list[int]:
    """``times`` uploads of ``visitor_id`` counted by another process: 1 allowed, 0 refused."""
    done = subprocess.run([sys.executable, "-c", OTHER_PROCESS, redis_url, visitor_id, str(times)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [int(word) for word in done.stdout.split()]


def test_with_redis_a_visitors_uploads_are_counted_across_processes(webchat_on_redis, redis_url):
    import redis

    webchat = webchat_on_redis
    session = webchat.new_session()
    assert [upload(webchat, session["token"]) for _ in range(6)] == [201] * 6
    # another replica sees those six: four more places, then none
    assert uploads_elsewhere(redis_url, session["visitor_id"], 5) == [1, 1, 1, 1, 0]
    refused = webchat.client.post(f"/webchat/attachments?token={session['token']}",
                                  files={"file": ("photo.jpg", jpeg(40, 30), "image/jpeg")})
    assert refused.status_code == 429 and refused.headers["retry-after"] == str(int(UPLOAD_RATE[1]))
    assert "wait" in refused.json()["detail"]
    # the count lives in Redis, and expires with the window
    probe = redis.Redis.from_url(redis_url)
    key = KEY_PREFIX + session["visitor_id"]
    assert probe.zcard(key) == UPLOAD_RATE[0] and 0 < probe.pttl(key) <= UPLOAD_RATE[1] * 1000
    probe.close()
    # another visitor has their own count
    other = webchat.new_session()
    assert upload(webchat, other["token"]) == 201


def test_the_window_slides_in_redis(redis_url):
    import redis.asyncio as aioredis

    async def scenario() -> list[bool]:
        client = aioredis.from_url(redis_url, decode_responses=True)
        limiter = UploadRate(client, count=2, window_s=0.5)
        try:
            first = [await limiter.allow("visitor-w") for _ in range(3)]
            await asyncio.sleep(0.6)
            return [*first, await limiter.allow("visitor-w")]
        finally:
            await client.aclose()

    assert asyncio.run(scenario()) == [True, True, False, True]


def test_with_redis_away_each_process_still_counts_on_its_own():
    import redis.asyncio as aioredis

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def scenario() -> list[bool]:
        client = aioredis.from_url(f"redis://127.0.0.1:{port}/0", socket_connect_timeout=0.5)
        try:
            limiter = UploadRate(client, count=3, window_s=60)
            return [await limiter.allow("visitor-a") for _ in range(4)] + [await limiter.allow("visitor-b")]
        finally:
            await client.aclose()

    assert asyncio.run(scenario()) == [True, True, True, False, True]
