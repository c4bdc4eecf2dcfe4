"""Liveness and readiness probes."""

from __future__ import annotations

from sqlalchemy import text

from tests.conftest import start_client


async def test_healthz_answers_when_the_process_is_up(client):
    response = await client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_readyz_is_ready_with_database_and_model(client):
    response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["checks"] == {"database": True, "migrations": True, "nlu_model": True}
    assert body["model_version"]


async def test_readyz_is_503_without_a_model(make_settings, tmp_path):
    settings = make_settings(nlu={"models_dir": tmp_path / "no-models"})
    async for client in start_client(settings):
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["nlu_model"] is False


async def test_openapi_document_is_served(client):
    response = await client.get("/openapi.json")
    paths = response.json()["paths"]
    assert "/api/conversations" in paths and "/webhooks/{channel}" in paths and "/model/parse" in paths


async def test_readyz_is_503_while_a_migration_is_missing(client):
    """A replica started before `caredesk migrate` ran (or against an older database) is not ready."""
    with client.wiring.engine.begin() as connection:
        latest = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        connection.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["migrations"] is False and response.json()["checks"]["database"] is True
    with client.wiring.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": latest})
    assert (await client.get("/readyz")).status_code == 200


async def test_readyz_checks_redis_when_it_carries_jobs_and_events(make_settings, redis_url):
    async for client in start_client(make_settings(redis_url=redis_url)):
        response = await client.get("/readyz")
        assert response.status_code == 200
        assert response.json()["checks"]["redis"] is True
