"""The training set in the database: intents and examples (add, edit, move, delete, search), the
change log, FAQ answers, Rasa YAML export and import, and refusing bad input with a reason."""

from __future__ import annotations

import pytest

from nlu import load_training_data
from nlu.training_data import read_training_yaml
from tests.conftest import ROOT
from tests.helpdesk.training.conftest import customer_says

#: a Rasa 3 file using what Rasa users write: block and list examples, inline entities in both
#: notations, roles, example and intent metadata, synonyms, regexes, lookups
RASA_FILE = '''version: "3.1"
nlu:
- intent: ask_installation
  metadata: {"owner": "care team"}
  examples: |
    - có lắp đặt [máy lạnh](product) tại nhà không
    - lắp [tủ lạnh]{"entity": "product", "value": "fridge"} mất phí không
    - do you install [washing machines]{"entity": "product", "role": "target"} at home
- intent: ask_trade_in
  examples:
  - text: thu cũ đổi mới [điện thoại](product) được không
    metadata: {"source": "zalo"}
  - text: có chương trình thu cũ không
  - text: trade in my old phone
  - text: đổi máy cũ lấy máy mới
  - text: shop có thu mua lại máy cũ không
- synonym: fridge
  examples: |
    - tủ lạnh
    - tu lanh
- regex: order_code
  examples: |
    - DH\\d{6}
- lookup: product
  examples: |
    - máy lạnh
    - tủ lạnh
'''


async def export(client, headers) -> str:
    response = await client.get("/api/nlu/export", headers=headers)
    assert response.status_code == 200, response.text
    return response.text


async def import_yaml(client, headers, text: str, mode: str = "merge"):
    return await client.post("/api/nlu/import", headers={**headers, "Content-Type": "application/x-yaml"},
                             params={"mode": mode}, content=text.encode("utf-8"))


async def changes(client, headers) -> list[dict]:
    response = await client.get("/api/nlu/changes", headers=headers, params={"limit": 500})
    assert response.status_code == 200, response.text
    return response.json()["data"]


def comparable(text: str):
    data = read_training_yaml(text)
    return ([(e.text, e.intent, e.entities, e.metadata) for e in data.examples], data.synonyms, data.regexes,
            data.lookups, data.intent_metadata)


async def test_the_shipped_data_is_the_first_training_set_and_exports_as_rasa_yaml(storage_app):
    admin = await storage_app.login()

    response = await storage_app.get("/api/nlu/export", headers=admin, params={"download": 1})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-yaml")
    assert "attachment" in response.headers["content-disposition"]
    assert response.text.startswith('version: "3.1"\nnlu:\n')
    shipped = load_training_data([ROOT / "data" / "nlu"])
    read_back = read_training_yaml(response.text)
    assert [(e.text, e.intent, e.entities) for e in read_back.examples] == \
        [(e.text, e.intent, e.entities) for e in shipped.examples]
    assert (read_back.synonyms, read_back.regexes, read_back.lookups) == \
        (shipped.synonyms, shipped.regexes, shipped.lookups)


@pytest.mark.slow
async def test_export_then_import_round_trips_exactly(storage_app):
    admin = await storage_app.login()
    merged = await import_yaml(storage_app, admin, RASA_FILE)
    assert merged.status_code == 200, merged.text
    assert merged.json()["added"] == 8
    first = await export(storage_app, admin)
    assert "ask_installation" in first and '"role": "target"' in first and '"source": "zalo"' in first

    # The same file again changes nothing and reads back identical.
    again = await import_yaml(storage_app, admin, first, mode="replace")
    assert again.status_code == 200, again.text
    assert again.json() | {"skipped": []} == {"mode": "replace", "intents": again.json()["intents"], "added": 0,
                                              "updated": 0, "removed": 0, "unchanged": again.json()["unchanged"],
                                              "skipped": []}
    assert await export(storage_app, admin) == first

    # Replacing with a small set, then with the export, rebuilds the whole set from the file alone.
    small = await import_yaml(storage_app, admin, RASA_FILE, mode="replace")
    assert small.status_code == 200 and small.json()["removed"] > 1000
    assert comparable(await export(storage_app, admin)) == comparable(RASA_FILE)
    rebuilt = await import_yaml(storage_app, admin, first, mode="replace")
    assert rebuilt.status_code == 200, rebuilt.text
    assert await export(storage_app, admin) == first


INVALID_FILES = [
    ('version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hello\n  - broken: [\n', "line"),
    ('version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hello [there\n', "bracket"),
    ('version: "3.1"\nnlu:\n- intent: greet\n  exemples: |\n    - hello\n', "exemples"),
    ('version: "3.1"\nnlu:\n- intent: "bad name!"\n  examples: |\n    - hello\n', "intent name"),
    ('version: "3.1"\nnlu:\n- intent: nlu_fallback\n  examples: |\n    - hello\n', "reserved"),
    ("just a string\n", "mapping"),
    ('version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n- regex: code\n  examples: |\n    - "(("\n',
     "regular expression"),
]


async def test_an_invalid_file_is_refused_with_the_reason_and_nothing_is_lost(app):
    admin = await app.login()
    before, log_before = await export(app, admin), await changes(app, admin)

    for document, fragment in INVALID_FILES:
        for mode in ("merge", "replace"):
            response = await import_yaml(app, admin, document, mode)
            assert response.status_code == 400, (document, mode, response.text)
            assert fragment in response.json()["detail"], (document, response.json())
    raw = await app.post("/api/nlu/import", headers={**admin, "Content-Type": "application/x-yaml"},
                         content=b'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - ch\xe0o\n')
    assert raw.status_code == 400 and "UTF-8" in raw.json()["detail"]

    assert await export(app, admin) == before
    assert await changes(app, admin) == log_before


async def test_a_file_uploaded_from_a_form_or_sent_as_json_is_imported(app):
    admin = await app.login()
    document = 'version: "3.1"\nnlu:\n- intent: ask_installation\n  examples: |\n    - lắp máy lạnh tận nhà không\n'

    uploaded = await app.post("/api/nlu/import", headers=admin, files={"file": ("nlu.yml", document.encode())})
    as_json = await app.post("/api/nlu/import", headers=admin,
                             json={"yaml": document.replace("lắp máy lạnh", "lắp tủ lạnh")})
    no_file = await app.post("/api/nlu/import", headers={**admin, "Content-Type": "multipart/form-data; boundary=x"},
                             content=b'--x\r\nContent-Disposition: form-data; name="mode"\r\n\r\nmerge\r\n--x--\r\n')
    bad_json = await app.post("/api/nlu/import", headers=admin, json={"file": document})

    assert uploaded.status_code == 200 and uploaded.json()["added"] == 1, uploaded.text
    assert as_json.status_code == 200 and as_json.json()["added"] == 1, as_json.text
    assert no_file.status_code == 400 and "no file" in no_file.json()["detail"]
    assert bad_json.status_code == 400 and "yaml" in bad_json.json()["detail"]


async def test_merge_adds_what_is_new_and_lists_texts_another_intent_has(app):
    admin = await app.login()
    document = ('version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - xin chào\n    - chào buổi sáng nha shop\n'
                '- intent: thank\n  examples: |\n    - cho mình gặp nhân viên\n')

    response = await import_yaml(app, admin, document)

    assert response.status_code == 200, response.text
    summary = response.json()
    assert (summary["added"], summary["unchanged"]) == (1, 1)
    assert summary["skipped"] == [{"text": "cho mình gặp nhân viên", "intent": "thank",
                                   "existing_intent": "request_human"}]


async def test_examples_are_added_searched_edited_moved_and_deleted(app):
    storage_app = app
    admin = await storage_app.login()

    created = await storage_app.post("/api/nlu/examples", headers=admin, json={
        "intent": "ask_installation", "text": "Có lắp đặt máy lạnh tận nhà không",
        "entities": [{"entity": "product", "start": 11, "end": 19}]})
    assert created.status_code == 201, created.text
    example = created.json()
    assert example["entities"] == [{"entity": "product", "value": "máy lạnh", "start": 11, "end": 19}]
    intents = (await storage_app.get("/api/nlu/intents", headers=admin)).json()["data"]
    assert {"name": "ask_installation", "examples": 1} .items() <= \
        next(i for i in intents if i["name"] == "ask_installation").items()

    # The search box ignores case and diacritics.
    found = await storage_app.get("/api/nlu/examples", headers=admin, params={"q": "LAP DAT MAY LANH"})
    assert [row["id"] for row in found.json()["data"]] == [example["id"]]
    of_intent = await storage_app.get("/api/nlu/examples", headers=admin, params={"intent": "greet", "limit": 5})
    assert of_intent.json()["count"] > 5 and {row["intent"] for row in of_intent.json()["data"]} == {"greet"}

    edited = await storage_app.patch(f"/api/nlu/examples/{example['id']}", headers=admin,
                                     json={"text": "có lắp máy lạnh tận nhà không"})
    assert edited.status_code == 200 and edited.json()["entities"] == []  # offsets of the old text dropped
    moved = await storage_app.patch(f"/api/nlu/examples/{example['id']}", headers=admin,
                                    json={"intent": "product_usage"})
    assert moved.status_code == 200 and moved.json()["intent"] == "product_usage"
    read = await storage_app.get(f"/api/nlu/examples/{example['id']}", headers=admin)
    assert read.json()["text"] == "có lắp máy lạnh tận nhà không" and read.json()["intent"] == "product_usage"

    deleted = await storage_app.delete(f"/api/nlu/examples/{example['id']}", headers=admin)
    assert deleted.status_code == 204
    assert (await storage_app.get(f"/api/nlu/examples/{example['id']}", headers=admin)).status_code == 404
    assert "có lắp máy lạnh tận nhà không" not in await export(storage_app, admin)


async def test_intents_are_created_and_deleted_with_their_examples_moved(app):
    admin = await app.login()
    created = await app.post("/api/nlu/intents", headers=admin, json={"name": "ask_installation"})
    assert created.status_code == 201 and created.json()["examples"] == 0
    assert (await app.post("/api/nlu/intents", headers=admin, json={"name": "ask_installation"})).status_code == 409
    await app.post("/api/nlu/examples", headers=admin, json={"intent": "ask_installation", "text": "lắp tận nhà không"})

    deleted = await app.delete("/api/nlu/intents/ask_installation", headers=admin, params={"move_to": "product_usage"})

    assert deleted.status_code == 204
    found = (await app.get("/api/nlu/examples", headers=admin, params={"q": "lắp tận nhà"})).json()["data"]
    assert [row["intent"] for row in found] == ["product_usage"]
    names = [i["name"] for i in (await app.get("/api/nlu/intents", headers=admin)).json()["data"]]
    assert "ask_installation" not in names


async def test_every_change_is_logged_with_who_when_and_what(storage_app):
    admin = await storage_app.login()
    me = (await storage_app.get("/api/me", headers=admin)).json()
    example = (await storage_app.post("/api/nlu/examples", headers=admin,
                                      json={"intent": "greet", "text": "chào shop nha"})).json()
    await storage_app.patch(f"/api/nlu/examples/{example['id']}", headers=admin, json={"intent": "thank"})
    await storage_app.delete(f"/api/nlu/examples/{example['id']}", headers=admin)

    log = await changes(storage_app, admin)

    assert [entry["action"] for entry in log[:3]] == ["example_deleted", "example_moved", "example_added"]
    deleted, moved, added = log[0], log[1], log[2]
    assert {entry["actor_type"] for entry in (deleted, moved, added)} == {"agent"}
    assert {entry["actor_id"] for entry in (deleted, moved, added)} == {me["id"]}
    assert moved["details"]["before"]["intent"] == "greet" and moved["details"]["after"]["intent"] == "thank"
    assert deleted["details"]["before"]["text"] == "chào shop nha"
    assert added["created_at"] <= moved["created_at"] <= deleted["created_at"]
    assert log[-1]["action"] == "seeded"


BAD_REQUESTS = [
    ("POST", "/api/nlu/examples", {"intent": "greet", "text": "   "}, 400, "empty"),
    ("POST", "/api/nlu/examples", {"intent": "greet"}, 422, "text"),
    ("POST", "/api/nlu/examples", {"intent": "greet", "text": "xin [chào"}, 400, "[ or ]"),
    ("POST", "/api/nlu/examples", {"intent": "bad intent!", "text": "xin chào bạn nhé"}, 400, "intent name"),
    ("POST", "/api/nlu/examples", {"intent": "nlu_fallback", "text": "xin chào bạn nhé"}, 400, "reserved"),
    ("POST", "/api/nlu/examples", {"intent": "thank", "text": "xin chào"}, 409, "greet"),
    ("POST", "/api/nlu/examples", {"intent": "greet", "text": "chào bạn",
                                   "entities": [{"entity": "product", "start": 3, "end": 40}]}, 400, "outside"),
    ("PATCH", "/api/nlu/examples/999999", {"intent": "greet"}, 404, "999999"),
    ("DELETE", "/api/nlu/examples/999999", None, 404, "999999"),
    ("DELETE", "/api/nlu/intents/no_such_intent", None, 404, "no_such_intent"),
    ("POST", "/api/nlu/review/g0000/label", {"intent": "greet"}, 404, "g0000"),
    ("POST", "/api/nlu/review/123456789/label", {"intent": "greet"}, 404, "123456789"),
    ("POST", "/api/nlu/review/123456789/label", {}, 422, "intent"),
    ("POST", "/api/nlu/models/no-such-version/activate", None, 404, "no-such-version"),
    ("POST", "/api/nlu/models/..%2Fetc/activate", None, 404, ""),
    ("GET", "/api/nlu/jobs/424242", None, 404, "424242"),
    ("GET", "/api/nlu/review?since=2026-01-01T00:00:00", None, 400, "time zone"),
    ("GET", "/api/nlu/review?reason=boredom", None, 422, "reason"),
    ("PUT", "/api/nlu/faq/new_answer", {"intent": "greet", "answer": {"fr": "bonjour"}}, 400, "language"),
    ("PUT", "/api/nlu/faq/new_answer", {"intent": "greet", "answer": {"vi": "chào"},
                                        "links": [{"title": "x", "url": "javascript:alert(1)"}]}, 400, "URL"),
]


async def test_bad_input_is_refused_with_a_reason(app):
    admin = await app.login()
    for method, path, body, status, fragment in BAD_REQUESTS:
        response = await app.request(method, path, headers=admin, json=body)
        assert response.status_code == status, (method, path, body, response.text)
        assert fragment in str(response.json()["detail"]), (method, path, response.json())


async def test_faq_answers_are_edited_next_to_the_intents_and_the_bot_answers_with_them(app):
    admin = await app.login()
    answers = (await app.get("/api/nlu/faq", headers=admin, params={"intent": "ask_payment"})).json()["data"]
    assert answers and all(answer["origin"] == "file" for answer in answers)
    first = answers[0]
    new_text = "Shop nhận tiền mặt, chuyển khoản và thẻ. (đã sửa từ trang huấn luyện)"

    saved = await app.put(f"/api/nlu/faq/{first['id']}", headers=admin, json={
        "intent": "ask_payment", "answer": {"vi": new_text, "en": "Cash, transfer and cards."},
        "keywords": first["keywords"], "links": first["links"]})

    assert saved.status_code == 200, saved.text
    assert saved.json()["origin"] == "edited"
    await customer_says(app, "faq-1", "shop có những hình thức thanh toán nào")
    replies = (await app.get("/webhooks/cli/messages", params={"sender_id": "faq-1"})).json()["data"]
    assert any(new_text in reply["text"] for reply in replies), replies
    log = await changes(app, admin)
    assert log[0]["action"] == "faq_saved" and log[0]["subject"] == first["id"]
    assert log[0]["details"]["before"]["answer"]["vi"] == first["answer"]["vi"]

    reverted = await app.post(f"/api/nlu/faq/{first['id']}/revert", headers=admin)
    assert reverted.status_code == 204
    answers = (await app.get("/api/nlu/faq", headers=admin, params={"intent": "ask_payment"})).json()["data"]
    assert answers[0]["origin"] == "file" and answers[0]["answer"] == first["answer"]
