"""Values the API schema accepts but no database column can hold get 422, on SQLite and PostgreSQL."""

from __future__ import annotations

import anyio
import pytest

from tests.conftest import start_client


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_client(request, make_settings):
    settings = make_settings() if request.param == "sqlite" else make_settings(
        database_url=request.getfixturevalue("postgres_url"))
    async for client in start_client(settings):
        yield client


@pytest.mark.parametrize("record_id", [2**31, 10**40])
async def test_an_id_past_what_the_database_holds_gets_422(any_client, record_id):
    headers = await any_client.login()
    for method, path in (("GET", f"/api/conversations/{record_id}"), ("GET", f"/api/customers/{record_id}"),
                         ("POST", f"/api/conversations/{record_id}/claim")):
        response = await any_client.request(method, path, headers=headers)
        assert response.status_code in (404, 422), (path, response.status_code, response.text)
    response = await any_client.get(f"/api/conversations/{10**40}", headers=headers)
    assert response.status_code == 422


async def test_a_streamed_export_refuses_an_agent_id_past_the_database_up_front(client):
    headers = await client.login()
    response = await client.get("/api/reports/export.csv", params={"agent_id": 10**25}, headers=headers)
    assert response.status_code == 422


async def test_an_order_import_without_a_file_gets_the_422_its_schema_documents(client):
    headers = await client.login()
    response = await client.post("/api/orders/import", files={}, data={"x": "1"}, headers=headers)
    assert response.status_code == 422
    # built in a thread, as /openapi.json builds it: building it on the loop is the stall the loop watch reports
    schema = await anyio.to_thread.run_sync(client.app.openapi)
    documented = schema["paths"]["/api/orders/import"]["post"]["responses"]["422"]
    shapes = documented["content"]["application/json"]["schema"]["anyOf"]
    assert {"$ref": "#/components/schemas/HTTPValidationError"} in shapes
    assert isinstance(response.json()["detail"], list)
