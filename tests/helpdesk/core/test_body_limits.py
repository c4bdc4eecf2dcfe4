"""The body limit middleware and the JSON nesting scanner, on their own (no app)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from helpdesk.core.body_limits import BodyLimitMiddleware, JsonDepthScanner, RouteLimit, json_too_deep

LIMIT = 1000


def depth_of(value) -> int:
    """How deep a parsed JSON value is nested (a scalar is 0, ``[]`` is 1)."""
    if isinstance(value, list):
        return 1 + max((depth_of(item) for item in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth_of(item) for item in value.values()), default=0)
    return 0


tricky_text = st.text(alphabet=st.sampled_from('ab[]{}"\\/\n\u00e9\u1ea1\U0001f600'), max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | tricky_text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(tricky_text, children, max_size=3),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(value=json_values, cuts=st.lists(st.integers(min_value=0), max_size=4), ascii_only=st.booleans())
def test_scanner_finds_the_true_depth_however_the_body_is_cut_into_chunks(value, cuts, ascii_only):
    body = json.dumps(value, ensure_ascii=ascii_only).encode()
    true_depth = depth_of(value)
    points = sorted({cut % (len(body) + 1) for cut in cuts})
    chunks = [body[start:end] for start, end in zip([0, *points], [*points, len(body)], strict=True)]
    for limit in (true_depth, max(0, true_depth - 1)):
        scanner = JsonDepthScanner(limit)
        verdicts = [scanner.feed(chunk) for chunk in chunks]
        assert all(verdicts) == (true_depth <= limit), (body, chunks, limit)


def test_brackets_and_escaped_quotes_inside_strings_do_not_count():
    assert not json_too_deep(json.dumps({"a": "[[[[{{{{\\\"[[[[", "b": ["]]]]"]}), 2)
    assert json_too_deep('{"a": [[["x"]]]}', 3)


def test_a_backslash_at_the_end_of_a_chunk_escapes_the_first_byte_of_the_next():
    scanner = JsonDepthScanner(1)
    assert scanner.feed(b'["ab\\') and scanner.feed(b'"[[[[", "c"]')
    assert scanner.depth == 0 and not scanner.in_string


class Recorder:
    """A receive() that hands out body chunks and counts how many were read."""

    def __init__(self, chunks: list[bytes]):
        self.chunks = list(chunks)
        self.read = 0

    async def __call__(self):
        self.read += 1
        if not self.chunks:
            return {"type": "http.disconnect"}
        chunk = self.chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(self.chunks)}


async def reading_app(scope, receive, send):
    """Reads the whole body, then answers 200 with its length."""
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


async def call(middleware, path: str, chunks: list[bytes], headers: dict[str, str]) -> tuple[int, dict, Recorder]:
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    receive = Recorder(chunks)
    scope = {"type": "http", "method": "POST", "path": path,
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    await middleware(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    detail = json.loads(body) if start["status"] != 200 else {}
    return start["status"], detail, receive


@pytest.fixture
def middleware():
    return BodyLimitMiddleware(reading_app, default_bytes=LIMIT, max_json_depth=4, routes=[
        RouteLimit("/webhooks/", 100, always_json=True),
        RouteLimit("/api/things/{thing_id}/files", 10 * LIMIT),
    ])


async def test_declared_length_over_the_limit_is_refused_before_the_body_is_read(middleware):
    status, detail, receive = await call(middleware, "/webhooks/telegram", [b"x" * 101],
                                         {"content-length": "101", "content-type": "application/json"})
    assert status == 413 and "100 bytes" in detail["detail"]
    assert receive.read == 0


async def test_streamed_body_stops_being_read_at_the_first_chunk_past_the_limit(middleware):
    chunks = [b"x" * 400] * 10
    status, detail, receive = await call(middleware, "/api/anything", chunks, {"content-type": "text/plain"})
    assert status == 413 and str(LIMIT) in detail["detail"]
    assert receive.read == 3  # 400 + 400 + 400 > 1000: the rest is never read


async def test_a_route_can_declare_a_bigger_limit(middleware):
    body = b"x" * (5 * LIMIT)
    status, _, _ = await call(middleware, "/api/things/7/files", [body],
                              {"content-length": str(len(body)), "content-type": "application/octet-stream"})
    assert status == 200
    status, _, _ = await call(middleware, "/api/things/7/other", [body],
                              {"content-length": str(len(body)), "content-type": "application/octet-stream"})
    assert status == 413


async def test_deep_json_is_refused_with_400_even_when_announced_as_text_on_a_webhook(middleware):
    body = b"[" * 5 + b"]" * 5
    status, detail, _ = await call(middleware, "/webhooks/zalo-oa", [body],
                                   {"content-length": str(len(body)), "content-type": "text/plain"})
    assert status == 400 and "nested deeper than 4" in detail["detail"]


async def test_non_json_bodies_outside_webhooks_are_not_scanned(middleware):
    body = b"[" * 50
    status, _, _ = await call(middleware, "/api/anything", [body],
                              {"content-length": str(len(body)), "content-type": "text/plain"})
    assert status == 200
