"""Entity annotations made on the training page: spans marked by offsets in a reviewed message are
checked (outside the text or crossing another: 422 with the reason, nothing written), stored on the
labelled example and exported in Rasa's inline form; entity names in use are listed; the comparison
scores both models' entities on the held-out split with per-entity errors."""

from __future__ import annotations

from helpdesk.training.comparison import compare
from tests.helpdesk.training.conftest import customer_message, customer_says, group_with, review_groups

TEXT = "tủ lạnh Toshiba giao về Đà Nẵng mất mấy ngày zq"


async def _group(app, admin, sender: str, text: str) -> dict:
    """The review target of a customer's message: its group when queued, else the message itself
    (an admin may label any customer message by its id)."""
    await customer_says(app, sender, text)
    group = group_with(await review_groups(app, admin), text)
    return group or {"id": str(customer_message(app, text).id)}


async def test_spans_marked_by_offsets_become_the_examples_entities_and_inline_yaml(app):
    admin = await app.login()
    group = await _group(app, admin, "an-1", TEXT)
    city = TEXT.index("Đà Nẵng")
    brand = TEXT.index("Toshiba")

    response = await app.post(f"/api/nlu/review/{group['id']}/label", headers=admin, json={
        "intent": "ask_delivery_time", "text": TEXT, "entities": [
            # the selection caught a space after the word: it is not part of the value
            {"entity": "city", "start": city, "end": city + len("Đà Nẵng") + 1},
            {"entity": "brand", "start": brand, "end": brand + len("Toshiba"), "role": "maker"},
        ]})

    assert response.status_code == 200, response.text
    example = (await app.get(f"/api/nlu/examples/{response.json()['added'][0]}", headers=admin)).json()
    assert example["entities"] == [
        {"entity": "brand", "value": "Toshiba", "start": brand, "end": brand + 7, "role": "maker"},
        {"entity": "city", "value": "Đà Nẵng", "start": city, "end": city + 7},
    ]
    exported = (await app.get("/api/nlu/export", headers=admin)).text
    assert "[Đà Nẵng](city)" in exported
    assert '[Toshiba]{"entity": "brand", "role": "maker"}' in exported
    names = (await app.get("/api/nlu/entities", headers=admin)).json()
    assert {"city", "brand"} <= set(names["data"]) and names["count"] == len(names["data"])


async def test_a_span_outside_the_text_or_crossing_another_is_refused_with_the_reason(app):
    admin = await app.login()
    group = await _group(app, admin, "an-2", TEXT)
    city = TEXT.index("Đà Nẵng")
    label = f"/api/nlu/review/{group['id']}/label"
    cases = {
        "outside the text": [{"entity": "city", "start": city, "end": len(TEXT) + 3}],
        "crosses the 'product' annotation": [{"entity": "product", "start": 0, "end": 15},
                                             {"entity": "brand", "start": 8, "end": 20}],
        "only spaces": [{"entity": "city", "start": 7, "end": 8}],
        "needs both start and end": [{"entity": "city", "start": city}],
        "invalid entity name": [{"entity": "thành phố", "start": city, "end": city + 7}],
        "not a message of this review group": None,
    }
    for reason, marks in cases.items():
        body = {"intent": "ask_delivery_time", "text": TEXT,
                "entities": marks or [{"entity": "city", "start": 0, "end": 3}]}
        if marks is None:
            body["text"] = "một câu khác hẳn"
        response = await app.post(label, headers=admin, json=body)
        assert response.status_code == 422, (reason, response.text)
        assert reason in response.json()["detail"], (reason, response.text)

    # Nothing was written: no example has the text.
    found = (await app.get("/api/nlu/examples", headers=admin, params={"q": TEXT})).json()
    assert found["count"] == 0


async def test_marks_on_a_text_already_an_example_replace_its_spans(app):
    admin = await app.login()
    text = "bảo hành nồi chiên ở Hải Phòng được không qq"
    group = await _group(app, admin, "an-3", text)
    created = await app.post("/api/nlu/examples", headers=admin, json={"intent": "ask_warranty_policy", "text": text})
    assert created.status_code == 201, created.text
    start = text.index("Hải Phòng")

    response = await app.post(f"/api/nlu/review/{group['id']}/label", headers=admin, json={
        "intent": "ask_warranty_policy", "entities": [{"entity": "city", "start": start, "end": start + 9}]})

    assert response.status_code == 200, response.text
    example = (await app.get(f"/api/nlu/examples/{created.json()['id']}", headers=admin)).json()
    assert example["entities"] == [{"entity": "city", "value": "Hải Phòng", "start": start, "end": start + 9}]


def test_the_comparison_scores_entities_of_both_models_with_per_entity_errors():
    holdout = [("giao Đà Nẵng", "ask_delivery"), ("giao Huế nhé", "ask_delivery"), ("màu đỏ", "ask_color")]
    gold = [[("city", 5, 12)], [("city", 5, 8)], [("color", 4, 6)]]
    active = [("ask_delivery", 0.9, []), ("ask_delivery", 0.9, [("city", 5, 8)]), ("ask_color", 0.9, [])]
    candidate = [("ask_delivery", 0.9, [("city", 5, 12)]), ("ask_delivery", 0.9, [("city", 0, 8)]),
                 ("ask_color", 0.9, [("color", 4, 6)])]

    result = compare(holdout, [], candidate, active, active_version="a", candidate_version="b",
                     active_saw_holdout=False, holdout_entities=gold)

    entities = result["entities"]
    assert entities["n"] == 3
    assert entities["active"]["precision"] == 1.0 and round(entities["active"]["recall"], 3) == 0.333
    assert round(entities["candidate"]["f1"], 3) == 0.667
    rows = {row["entity"]: row for row in entities["per_entity"]}
    assert rows["color"]["active"]["f1"] == 0.0 and rows["color"]["candidate"]["f1"] == 1.0
    assert rows["city"]["support"] == 2 and rows["city"]["candidate"]["f1"] == 0.5
    assert entities["errors"] == [{"entity": "city", "count": 1, "examples": [{
        "text": "giao Huế nhé", "expected": [{"entity": "city", "start": 5, "end": 8, "text": "Huế"}],
        "predicted": [{"entity": "city", "start": 0, "end": 8, "text": "giao Huế"}]}]}]
    assert result["verdict"] == "better"
    assert any("entity F1 rises" in reason for reason in result["reasons"])

    worse = compare(holdout, [], active, candidate, active_version="b", candidate_version="c",
                    active_saw_holdout=False, holdout_entities=gold)
    assert worse["verdict"] == "worse" and any("entity F1 falls" in reason for reason in worse["reasons"])
    # Without gold spans (or predictions without entities) there is nothing to score.
    assert compare(holdout, [], candidate, active, active_version="a", candidate_version="b",
                   active_saw_holdout=False)["entities"] is None
