"""Every HTML page carries the inbox's security headers: the demo shop, the API docs, the admin pages."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

SAME_AS_INBOX = {"x-frame-options": "DENY", "x-content-type-options": "nosniff", "referrer-policy": "same-origin"}


def directives(policy: str) -> dict[str, list[str]]:
    """A Content-Security-Policy as {directive: sources}."""
    parsed = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            parsed[words[0]] = words[1:]
    return parsed


@pytest.mark.parametrize("path", ["/", "/demo", "/docs", "/redoc", "/admin/nlu", "/inbox/login"])
async def test_every_page_carries_the_security_headers(client, path):
    response = await client.get(path)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    for name, value in SAME_AS_INBOX.items():
        assert response.headers.get(name) == value, (path, name)
    policy = directives(response.headers["content-security-policy"])
    assert policy["frame-ancestors"] == ["'none'"] and policy["object-src"] == ["'none'"]
    assert "'unsafe-inline'" not in policy["script-src"] and "*" not in policy["script-src"]


async def test_the_demo_shop_lets_the_widget_talk_to_this_server_only(client):
    policy = directives((await client.get("/")).headers["content-security-policy"])
    assert policy["script-src"] == ["'self'"]  # the widget script comes from here
    assert "'unsafe-inline'" in policy["style-src"]  # the page's and the widget's own style elements
    assert policy["connect-src"] == ["'self'", "ws://caredesk.test", "wss://caredesk.test"]


async def test_the_docs_may_run_this_servers_scripts_and_their_own_inline_script_only(client):
    response = await client.get("/docs")
    policy = directives(response.headers["content-security-policy"])
    inline = re.findall(r"<script>(.*?)</script>", response.text, re.DOTALL)
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in policy["script-src"]
    assert [source for source in policy["script-src"] if not source.startswith("'sha256-")] == ["'self'"]
    assert (await client.get("/openapi.json")).status_code == 200


async def test_json_answers_are_left_alone(client):
    response = await client.get("/healthz")
    assert "content-security-policy" not in response.headers
