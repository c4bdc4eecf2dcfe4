"""Entities on the training page in real headless Chromium: the admin selects spans of a reviewed
message with the mouse (and marks one from the keyboard), names them (an existing entity or a new
one, a role optional), sees them highlighted and removes one; a span crossing a mark is refused;
labelling stores the spans (Rasa's inline form in the export); a retrain's comparison shows entity
precision/recall/F1 of both models, per entity, and the new model's errors per entity."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.conftest import skip_module_without_browser
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, LiveServer

pytestmark = pytest.mark.slow  # a real Chromium against a live server, and a retrain

skip_module_without_browser()

from playwright.sync_api import expect

from tests.browser.test_training import Customers

TEXT = "máy giặt Toshiba giao về Đà Nẵng mất mấy ngày vậy shop"


@pytest.fixture
def training_server(make_settings, trained_models_dir: Path, tmp_path: Path) -> Iterator[LiveServer]:
    """CareDesk on a real port with a model store of its own (the test retrains)."""
    models = tmp_path / "models"
    shutil.copytree(trained_models_dir, models)
    with LiveServer(make_settings(nlu={"models_dir": models})) as server:
        yield server


def _span_box(page, group, fragment: str) -> dict:
    """The on-screen box of ``fragment`` inside the group's message (first and last character)."""
    return group.locator(".sample").evaluate("""(sample, fragment) => {
        const walker = document.createTreeWalker(sample, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            const at = node.data.indexOf(fragment);
            if (at < 0) continue;
            const range = document.createRange();
            range.setStart(node, at);
            range.setEnd(node, at + fragment.length);
            const rects = range.getClientRects();
            const first = rects[0], last = rects[rects.length - 1];
            return {x0: first.left + 1, y0: first.top + first.height / 2,
                    x1: last.right - 1, y1: last.top + last.height / 2};
        }
        return null;
    }""", fragment)


def _drag_select(page, group, fragment: str, to: str | None = None) -> None:
    """Drag the mouse from the start of ``fragment`` to its end (or to the end of ``to``)."""
    start = _span_box(page, group, fragment)
    end = _span_box(page, group, to) if to else start
    assert start and end, (fragment, to)
    page.mouse.move(start["x0"], start["y0"])
    page.mouse.down()
    page.mouse.move((start["x0"] + end["x1"]) / 2, end["y1"], steps=4)
    page.mouse.move(end["x1"], end["y1"], steps=4)
    page.mouse.up()


def test_admin_annotates_entities_retrains_and_reads_entity_scores(training_server, page):
    url = training_server.url
    customers = Customers(url)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("dialog", lambda dialog: dialog.dismiss())

    customers.say("ent-a", TEXT)
    _, message = customers.message_of("ent-a", TEXT)
    flagged = customers.http.post("/api/nlu/review/flag", headers=customers.admin, json={"message_id": message["id"]})
    assert flagged.status_code == 201, flagged.text

    page.goto(f"{url}/admin/nlu")
    page.locator("#login-form [name=email]").fill(ADMIN_EMAIL)
    page.locator("#login-form [name=password]").fill(ADMIN_PASSWORD)
    page.locator("#login-form button[type=submit]").click()
    expect(page.locator("#app")).to_be_visible()
    group = page.locator(".group", has_text="Toshiba")
    expect(group).to_be_visible()
    # The entity names in use are offered when naming a span.
    expect(page.locator('#entity-names option[value="product"]')).to_have_count(1)

    # Mouse: drag over "Đà Nẵng", press "Mark entity", type a new entity name, Enter.
    _drag_select(page, group, "Đà Nẵng")
    group.locator("button.mark").click()
    group.locator(".mark-form .entity-name").fill("city")
    group.locator(".mark-form .entity-name").press("Enter")
    expect(group.locator('.sample mark.entity[data-entity="city"]')).to_have_text("Đà Nẵng")

    # Mouse again: "máy giặt" as the existing product entity.
    _drag_select(page, group, "máy giặt")
    group.locator("button.mark").click()
    group.locator(".mark-form .entity-name").fill("product")
    group.locator(".mark-form .entity-name").press("Enter")
    expect(group.locator(".sample mark.entity")).to_have_count(2)

    # Keyboard: a double click selects "Toshiba"; "e" on the message starts a mark; a role is typed.
    box = _span_box(page, group, "Toshiba")
    page.mouse.dblclick((box["x0"] + box["x1"]) / 2, box["y0"])
    group.locator(".sample").press("e")
    expect(group.locator(".mark-form .entity-name")).to_be_focused()
    page.keyboard.type("brand")
    page.keyboard.press("Tab")
    page.keyboard.type("maker")
    page.keyboard.press("Enter")
    expect(group.locator('.sample mark.entity[data-entity="brand"]')).to_have_text("Toshiba")
    expect(group.locator('.chip.mark[data-entity="brand"]')).to_contain_text("(maker)")

    # A span crossing a mark is refused; a mark can be removed.
    _drag_select(page, group, "shiba", to="giao")
    group.locator("button.mark").click()
    expect(page.locator("#flash")).to_contain_text("chồng lên")
    group.locator('.chip.mark[data-entity="product"] button.remove-mark').click()
    expect(group.locator(".sample mark.entity")).to_have_count(2)
    expect(group.locator(".sample")).to_have_text(TEXT)

    group.locator(".label-intent").fill("ask_delivery_time")
    group.locator("button.label").click()
    expect(page.locator("#flash")).to_contain_text("ask_delivery_time")
    found = customers.http.get("/api/nlu/examples", headers=customers.admin, params={"q": "Toshiba giao"}).json()
    assert [example["entities"] for example in found["data"]] == [[
        {"entity": "brand", "value": "Toshiba", "start": 9, "end": 16, "role": "maker"},
        {"entity": "city", "value": "Đà Nẵng", "start": 25, "end": 32},
    ]]
    exported = customers.http.get("/api/nlu/export", headers=customers.admin).text
    assert '[Toshiba]{"entity": "brand", "role": "maker"} giao về [Đà Nẵng](city)' in exported

    # Retrain: the comparison shows entity scores of both models, per entity, and the errors.
    page.locator("#train").click()
    comparison = page.locator("#comparison")
    expect(comparison).to_be_visible(timeout=90_000)
    entities = comparison.locator("#entity-comparison")
    expect(entities).to_be_visible()
    for metric in ("entity_precision", "entity_recall", "entity_f1"):
        expect(entities.locator(f'tr[data-metric="{metric}"] .candidate-score')).to_have_text(r_percent())
        expect(entities.locator(f'tr[data-metric="{metric}"] .active-score')).to_have_text(r_percent())
    expect(entities.locator('table.per-entity tr[data-entity="product"] .candidate-f1')).to_have_text(r_percent())
    errors = entities.locator(".entity-errors details")
    if errors.count():
        errors.first.locator("summary").click()
        expect(errors.first.locator("li").first.locator(".expected")).to_be_visible()
    else:
        expect(entities).to_contain_text("nhận đúng mọi thực thể")

    # English too.
    page.locator("#lang").click()
    expect(entities.locator("caption")).to_contain_text("Entities on the held-out set")
    assert problems == []


def r_percent():
    import re

    return re.compile(r"^\d{1,3}\.\d%$")
