"""``caredesk orders import`` and ``caredesk orders delivered`` (run in-process with typer's runner)."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from helpdesk.shop import cli
from helpdesk.channels.ledger import make_database_engine
from helpdesk.shop.models import Order
from tests.helpdesk.care.conftest import make_customer, make_order, status_of

runner = CliRunner()


@pytest.fixture
def engine(care_settings, monkeypatch):
    settings = care_settings()
    monkeypatch.setattr(cli, "_settings", lambda: settings)
    engine = make_database_engine(settings.database_url)
    yield engine
    engine.dispose()


def test_delivered_command_marks_the_order_and_schedules_care(engine):
    make_order(engine)
    make_customer(engine)

    first = runner.invoke(cli.app, ["delivered", "dh200001"])
    again = runner.invoke(cli.app, ["delivered", "DH200001"])

    assert first.exit_code == 0, first.output
    assert "marked delivered; 5 care messages scheduled" in first.output
    assert "was already delivered; 0 care messages scheduled" in again.output
    assert status_of(engine, "DH200001")["thank_you"] == "scheduled"  # the running server sends it


def test_delivered_command_explains_an_unknown_order(engine):
    result = runner.invoke(cli.app, ["delivered", "DH999999"])
    assert result.exit_code == 1 and "not found" in result.output


def test_import_command_refuses_a_file_with_a_bad_line_and_imports_nothing(engine, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("code,phone,status\nDH500001,0901234567,delivered\nDH500002,0901234567,lost\n",
                    encoding="utf-8")

    result = runner.invoke(cli.app, ["import", str(path)])

    assert result.exit_code == 1
    assert "orders.csv:3:" in result.output and "Nothing was imported" in result.output
    with Session(engine) as session:
        assert session.exec(select(Order)).all() == []
