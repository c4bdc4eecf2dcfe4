"""Only admins change (or read) the training data and the models: anyone else is refused, and a
refused request changes nothing."""

from __future__ import annotations

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.helpdesk.training.conftest import make_agent

YAML = 'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hello there friend\n'

ADMIN_ROUTES = [
    ("GET", "/api/nlu/review", None),
    ("POST", "/api/nlu/review/g0123/label", {"intent": "greet"}),
    ("POST", "/api/nlu/review/1/dismiss", None),
    ("GET", "/api/nlu/intents", None),
    ("POST", "/api/nlu/intents", {"name": "sneaky"}),
    ("DELETE", "/api/nlu/intents/greet", None),
    ("GET", "/api/nlu/examples", None),
    ("POST", "/api/nlu/examples", {"intent": "greet", "text": "sneaky example"}),
    ("GET", "/api/nlu/examples/1", None),
    ("PATCH", "/api/nlu/examples/1", {"intent": "thank"}),
    ("DELETE", "/api/nlu/examples/1", None),
    ("GET", "/api/nlu/vocabulary", None),
    ("PUT", "/api/nlu/vocabulary/lookup/product", {"entries": ["x"]}),
    ("DELETE", "/api/nlu/vocabulary/lookup/product", None),
    ("GET", "/api/nlu/changes", None),
    ("GET", "/api/nlu/export", None),
    ("POST", "/api/nlu/import?mode=replace", YAML),
    ("GET", "/api/nlu/faq", None),
    ("PUT", "/api/nlu/faq/payment_methods", {"intent": "ask_payment", "answer": {"vi": "sneaky"}}),
    ("DELETE", "/api/nlu/faq/payment_methods", None),
    ("POST", "/api/nlu/faq/payment_methods/revert", None),
    ("POST", "/api/nlu/train", None),
    ("GET", "/api/nlu/jobs", None),
    ("GET", "/api/nlu/jobs/1", None),
    ("GET", "/api/nlu/jobs/1/events", None),
    ("GET", "/api/nlu/models", None),
    ("POST", "/api/nlu/models/{version}/activate", None),
    ("POST", "/api/nlu/models/{version}/discard", None),
]


async def request(client, method, path, body, headers):
    if isinstance(body, str):
        return await client.request(method, path, headers={**headers, "Content-Type": "application/x-yaml"},
                                    content=body.encode())
    return await client.request(method, path, headers=headers, json=body)


async def test_a_non_admin_is_refused_everything_and_changes_nothing(app):
    admin = await app.login()
    store = app.wiring.models.store
    version = store.active_version()
    export_before = (await app.get("/api/nlu/export", headers=admin)).text
    log_before = (await app.get("/api/nlu/changes", headers=admin)).json()["count"]
    callers = {
        "anonymous": ({}, 401),
        "expired token": ({"Authorization": "Bearer not-a-real-token"}, 401),
        "agent": (await make_agent(app, admin, "agent@test.local"), 403),
        "supervisor": (await make_agent(app, admin, "super@test.local", role="supervisor"), 403),
    }

    for who, (headers, status) in callers.items():
        for method, path, body in ADMIN_ROUTES:
            response = await request(app, method, path.format(version=version), body, headers)
            assert response.status_code == status, (who, method, path, response.status_code, response.text)
            if status == 403:
                assert response.json()["detail"] == "admins only"

    assert (await app.get("/api/nlu/export", headers=admin)).text == export_before
    assert (await app.get("/api/nlu/changes", headers=admin)).json()["count"] == log_before
    assert (await app.get("/api/nlu/jobs", headers=admin)).json()["count"] == 0
    assert [info.version for info in store.versions()] == [version] and store.active_version() == version


async def test_a_browser_session_needs_its_csrf_token_to_change_anything(app):
    opened = await app.post("/api/auth/session", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert opened.status_code == 200
    csrf = opened.json()["csrf_token"]

    forged = await app.post("/api/nlu/examples", json={"intent": "greet", "text": "forged example text"})
    read = await app.get("/api/nlu/examples", params={"q": "forged"})
    allowed = await app.post("/api/nlu/examples", headers={"X-CSRF-Token": csrf},
                             json={"intent": "greet", "text": "a real admin's example"})

    assert forged.status_code == 403 and "CSRF" in forged.json()["detail"]
    assert read.status_code == 200 and read.json()["count"] == 0
    assert allowed.status_code == 201


async def test_any_agent_may_flag_a_message_for_review(app):
    admin = await app.login()
    agent = await make_agent(app, admin, "flagger@test.local")
    response = await app.post("/api/nlu/review/flag", headers=agent, json={"message_id": 424242})
    assert response.status_code == 404  # allowed in, but there is no such message
