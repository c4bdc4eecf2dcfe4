"""The composition root: worker modes, the job runner each mode gets, the clock tests set, and that no
domain reaches back into the wiring."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import pytest

from helpdesk.core.config import Settings
from helpdesk.jobs.remote import RemoteJobs
from helpdesk.jobs.runner import JobRunner
from helpdesk.wiring import Wiring, WorkerMode, build_job_runner, worker_mode

HELPDESK = Path(__file__).resolve().parents[2] / "helpdesk"


@pytest.fixture
def wiring(sqlite_url: str, tmp_path: Path):
    """A wiring on a database of the test's own, not started."""
    built = Wiring(Settings(_env_file=None, environment="test", database_url=sqlite_url,
                            nlu={"models_dir": tmp_path / "no-models"}))
    yield built
    built.engine.dispose()
    if built.edge_engine is not built.engine:
        built.edge_engine.dispose()


@pytest.mark.parametrize(("setting", "mode"), [("auto", WorkerMode.INLINE), ("inline", WorkerMode.INLINE),
                                               ("process", WorkerMode.PROCESS), ("child", WorkerMode.CHILD),
                                               ("worker", WorkerMode.WORKER), ("external", WorkerMode.EXTERNAL)])
def test_each_worker_mode_setting_names_one_mode(setting, mode):
    settings = Settings(_env_file=None, environment="test", worker={"mode": setting})
    assert worker_mode(settings) is mode


@pytest.mark.parametrize(("mode", "runner", "spawns"), [
    (WorkerMode.INLINE, JobRunner, None), (WorkerMode.CHILD, JobRunner, None), (WorkerMode.WORKER, JobRunner, None),
    (WorkerMode.PROCESS, RemoteJobs, True), (WorkerMode.EXTERNAL, RemoteJobs, False)])
async def test_the_factory_gives_each_mode_its_job_runner(wiring, mode, runner, spawns):
    built = build_job_runner(mode, wiring.settings, transport=object())
    assert type(built) is runner
    if spawns is not None:
        assert built.spawn is spawns


async def test_parts_handed_the_clock_at_start_up_read_a_fake_set_later(wiring):
    fake = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    care_clock, csat_clock = wiring.care.clock, wiring.csat.clock
    wiring.clock.use(lambda: fake)
    assert care_clock.now() == fake and csat_clock.now() == fake


def test_a_job_runner_given_to_the_wiring_reaches_the_domains_that_queue_work(wiring):
    runner = object()
    wiring.use_jobs(runner)
    assert wiring.worker is runner and wiring.care.jobs is runner and wiring.csat.jobs is runner


def test_no_module_of_helpdesk_but_the_app_and_the_cli_imports_the_wiring():
    importers = set()
    for path in HELPDESK.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [f"{node.module}.{alias.name}" for alias in node.names] + [node.module or ""]
                     if isinstance(node, ast.ImportFrom) else [])
            if "helpdesk.wiring" in names:
                importers.add(path.relative_to(HELPDESK).as_posix())
    assert importers <= {"app.py", "cli.py"}
