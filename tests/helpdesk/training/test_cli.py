"""``caredesk training …``: the whole loop scripted from the command line, on the database a
running server uses (run in-process with typer's runner)."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

from helpdesk.cli import app as caredesk
from helpdesk.training import cli
from tests.helpdesk.training.conftest import MISUNDERSTOOD, MISUNDERSTOOD_INTENT, customer_says

runner = CliRunner()


@pytest.fixture
def command(training_settings, monkeypatch):
    """Run ``caredesk training ARGS`` against the test's database and model store."""
    settings = training_settings()
    monkeypatch.setattr(cli, "_settings", lambda: settings)

    def run(*args: str, code: int = 0):
        result = runner.invoke(caredesk, ["training", *args])
        assert result.exit_code == code, (args, result.output, result.exception)
        return result

    return run


async def parse_version(client, text: str) -> tuple[str, str]:
    answer = (await client.post("/model/parse", json={"text": text})).json()
    return answer["intent"]["name"], answer["model_version"]


async def follow(client, version: str) -> tuple[str, str]:
    """Wait (at most 5 s) for the running server to answer with ``version``."""
    for _ in range(100):
        intent, answering = await parse_version(client, MISUNDERSTOOD)
        if answering == version:
            return intent, answering
        await asyncio.sleep(0.05)
    raise AssertionError(f"the server still answers with {answering}")


# The commands are synchronous and run here, on the loop that also serves the app the test talks to:
# the test itself blocks that loop while a command runs (training takes a second or two).
@pytest.mark.slow
@pytest.mark.loop_may_block
async def test_the_training_loop_can_be_scripted_from_the_command_line(app, command, tmp_path):
    admin = await app.login()
    await customer_says(app, "cli-1", MISUNDERSTOOD)
    await customer_says(app, "cli-2", MISUNDERSTOOD)

    queue = json.loads(command("review", "--json").stdout)
    group = next(g for g in queue["data"] if MISUNDERSTOOD in g["texts"])
    assert group["count"] == 2 and group["reasons"] == {"fallback": 2}
    assert "1 examples added" in command("label", group["id"], MISUNDERSTOOD_INTENT).stdout

    trained = json.loads(command("train", "--json").stdout)
    candidate, shipped = trained["candidate_version"], trained["baseline_version"]
    assert trained["status"] == "succeeded" and trained["comparison"]["verdict"] == "worse"
    assert trained["comparison"]["flips"]["better"][0]["text"] == MISUNDERSTOOD

    listed = json.loads(command("models", "--json").stdout)
    assert listed["active"] == shipped
    assert {m["version"]: m["metrics"] is not None for m in listed["data"]} == {candidate: True, shipped: False}
    # The API sees the job the command line ran, with its comparison.
    job = (await app.get(f"/api/nlu/jobs/{trained['job_id']}", headers=admin)).json()
    assert job["candidate_version"] == candidate and job["comparison"]["verdict"] == "worse"

    # Activating from the command line switches the running server; rolling back too.
    assert f"active model: {candidate} (was {shipped})" in command("activate", candidate).stdout
    assert await follow(app, candidate) == (MISUNDERSTOOD_INTENT, candidate)
    command("activate", shipped)
    assert await follow(app, shipped) == ("nlu_fallback", shipped)

    exported = tmp_path / "nlu.yml"
    command("export", str(exported))
    assert exported.read_text(encoding="utf-8") == (await app.get("/api/nlu/export", headers=admin)).text
    assert f"- {MISUNDERSTOOD}" in exported.read_text(encoding="utf-8")
    assert "0 added, 0 updated, 0 removed" in command("import", str(exported), "--mode", "replace").stdout

    log = json.loads(command("changes", "--json", "--limit", "5").stdout)["data"]
    assert log[0]["action"] == "imported" and log[0]["actor"] == "cli"
    assert "review_labelled" in [entry["action"] for entry in log]


@pytest.mark.loop_may_block  # the commands run on the app's loop too (see above)
async def test_the_command_line_explains_what_it_refuses(app, command, tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text('version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hello [there\n', encoding="utf-8")
    before = command("export").stdout

    refused = command("import", str(bad), code=1)
    assert "not valid Rasa NLU YAML" in refused.output and "line 5" in refused.output
    assert command("export").stdout == before
    assert "not found" in command("activate", "no-such-version", code=1).output
    assert "review group" in command("label", "g0000", "greet", code=1).output
    assert "intent name" in command("add-example", "bad name!", "xin chào bạn", code=1).output
    assert "already an example" in command("add-example", "thank", "xin chào", code=1).output
    assert "NAME=TEXT" in command("label", "1", "greet", "--entity", "product", code=2).output
    assert "--reason" in command("review", "--reason", "boredom", code=2).output
    # The existing commands on files keep working next to these.
    assert runner.invoke(caredesk, ["nlu", "--help"]).exit_code == 0
