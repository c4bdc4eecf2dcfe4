"""The first model of a deployment, from real processes: several booting at once on PostgreSQL train
it once, and `caredesk prepare` trains it once and then finds it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from helpdesk.channels.ledger import make_database_engine
from helpdesk.core.db import migrate
from helpdesk.nlu_admin.models import NluModel
from helpdesk.nlu_admin.store import DatabaseModelStore
from tests.conftest import ROOT
from tests.helpdesk.nlu_admin.test_store import TINY_NLU

pytestmark = pytest.mark.slow  # each test starts Python processes that import the whole application

CAREDESK = str(Path(sys.executable).with_name("caredesk"))
#: imports first, then waits for the agreed moment, so the processes ask at the same time
BOOT = """
import os, time
from helpdesk.channels.ledger import make_database_engine
from helpdesk.core.config import Settings
from helpdesk.nlu_admin.bootstrap import ensure_active_model
settings = Settings()
engine = make_database_engine(settings.database_url)
time.sleep(max(0.0, float(os.environ["BOOT_AT"]) - time.time()))
print(ensure_active_model(engine, settings))
"""


def tiny_data_dir(tmp_path: Path) -> Path:
    """The shipped data with a two-intent NLU set (trains in a fraction of a second)."""
    data = tmp_path / "data"
    (data / "nlu").mkdir(parents=True)
    for child in (ROOT / "data").iterdir():
        if child.name != "nlu":
            (data / child.name).symlink_to(child)
    (data / "nlu" / "tiny.yml").write_text(TINY_NLU, encoding="utf-8")
    return data


def env_for(url: str, data: Path, models_dir: Path) -> dict[str, str]:
    return {**os.environ, "CAREDESK_ENVIRONMENT": "test", "CAREDESK_DATABASE_URL": url,
            "CAREDESK_DATA_DIR": str(data), "CAREDESK_NLU__MODELS_DIR": str(models_dir)}


def stored_versions(url: str) -> int:
    engine = make_database_engine(url)
    with engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(NluModel)).scalar_one()
    engine.dispose()
    return count


def test_processes_booting_at_once_on_postgresql_train_once(postgres_url, tmp_path):
    engine = make_database_engine(postgres_url)
    migrate(engine)  # migrations under their own lock are `caredesk migrate`'s part
    engine.dispose()
    data = tiny_data_dir(tmp_path)
    boot_at = str(time.time() + 10)  # importing the application takes a few seconds on a loaded machine
    processes = [subprocess.Popen([sys.executable, "-c", BOOT], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env={**env_for(postgres_url, data, tmp_path / f"host-{index}"),
                                                  "BOOT_AT": boot_at})
                 for index in range(3)]
    outputs = [process.communicate(timeout=120) for process in processes]

    assert all(process.returncode == 0 for process in processes), [err[-2000:] for _, err in outputs]
    versions = {out.strip().splitlines()[-1] for out, _ in outputs}
    assert len(versions) == 1
    assert stored_versions(postgres_url) == 1


def test_prepare_trains_the_first_model_once_then_finds_it(tmp_path):
    url = f"sqlite:///{tmp_path}/caredesk.db"
    env = env_for(url, tiny_data_dir(tmp_path), tmp_path / "models")

    first = subprocess.run([CAREDESK, "prepare"], capture_output=True, text=True, timeout=120, env=env)
    second = subprocess.run([CAREDESK, "prepare"], capture_output=True, text=True, timeout=120, env=env)

    assert first.returncode == 0 and second.returncode == 0, (first.stderr, second.stderr)
    engine = make_database_engine(url)
    version = DatabaseModelStore(engine, tmp_path / "models").active_version()
    engine.dispose()
    assert version is not None and f"NLU model {version} activated" in first.stdout
    assert f"NLU model {version} is active" in second.stdout
    assert stored_versions(url) == 1


def test_caredesk_migrate_from_three_places_at_once_on_a_fresh_database(postgres_url, tmp_path):
    """A deploy's one-shot `caredesk migrate`, started three times at once (two deploys racing, or
    replicas each running it): all succeed, the schema is at head, one admin, one model trained."""
    from helpdesk.agents.models import Agent
    from helpdesk.core.db import current_revision, head_revision

    data = tiny_data_dir(tmp_path)
    processes = [subprocess.Popen([CAREDESK, "migrate"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=env_for(postgres_url, data, tmp_path / f"host-{index}"))
                 for index in range(3)]
    outputs = [process.communicate(timeout=180) for process in processes]

    assert all(process.returncode == 0 for process in processes), [err[-2000:] for _, err in outputs]
    # each says "NLU model <version> is active (<seconds>)": the same version for all
    assert len({re.search(r"NLU model (\S+) is active", out)[1] for out, _ in outputs}) == 1, outputs
    assert stored_versions(postgres_url) == 1
    engine = make_database_engine(postgres_url)
    try:
        with engine.connect() as connection:
            assert current_revision(connection) == head_revision()
            assert connection.execute(select(func.count()).select_from(Agent)).scalar_one() == 1
    finally:
        engine.dispose()


def test_caredesk_migrate_says_why_when_the_database_is_away(tmp_path):
    env = env_for("postgresql+psycopg://caredesk@127.0.0.1:9/none", tiny_data_dir(tmp_path), tmp_path / "models")
    result = subprocess.run([CAREDESK, "migrate", "--wait", "1"], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 1
    assert "The database is not reachable" in result.stdout
