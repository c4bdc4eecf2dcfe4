"""Conversation stories (tests/stories/*.yml) run through the real app on the cli channel."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml
from sqlmodel import Session

from helpdesk.shop.service import load_shop_file
from tests.conftest import ROOT

STORIES_DIR = Path(__file__).resolve().parents[1] / "stories"


def load_stories() -> list[pytest.param]:
    stories = []
    for path in sorted(STORIES_DIR.glob("*.yml")):
        for story in yaml.safe_load(path.read_text(encoding="utf-8"))["stories"]:
            stories.append(pytest.param(story, id=f"{path.stem}: {story['story']}"))
    return stories


@pytest.mark.parametrize("story", load_stories())
async def test_story(client, story):
    if story.get("demo"):
        with Session(client.wiring.engine) as session:
            load_shop_file(session, ROOT / "data" / "demo" / "shop.yml")
            session.commit()
    headers = await client.login()
    sender = "story-customer"
    seen = 0
    ids = itertools.count(1)
    for number, step in enumerate(story["steps"], start=1):
        where = f"step {number} ({step.get('user')!r}{' + attachments' if step.get('attachments') else ''})"
        response = await client.post("/webhooks/cli", json={
            "sender_id": sender, "message_id": f"m{next(ids)}", "text": step.get("user", ""),
            "payload": step.get("payload"), "attachments": step.get("attachments", [])})
        assert response.status_code == 200, response.text
        await client.settle()
        new = (await client.get("/webhooks/cli/messages", params={"sender_id": sender, "after": seen})).json()
        replies = [m["text"] for m in new["data"]]
        seen = max([seen] + [m["id"] for m in new["data"]])
        if step.get("silent"):
            assert replies == [], f"{where}: the bot should stay silent, said {replies}"
        if "bot" in step:
            assert any(all(piece.lower() in reply.lower() for piece in step["bot"]) for reply in replies), (
                f"{where}: no reply contains {step['bot']}; replies: {replies}")
        for piece in step.get("not", []):
            assert all(piece.lower() not in reply.lower() for reply in replies), (
                f"{where}: {piece!r} must not be said; replies: {replies}")
        if {"state", "priority", "escalation_reason"} & step.keys():
            conversations = (await client.get("/api/conversations", headers=headers)).json()["data"]
            conversation = conversations[0]
            for key in ("state", "priority", "escalation_reason"):
                if key in step:
                    assert conversation[key] == step[key], f"{where}: {key} is {conversation[key]!r}"
