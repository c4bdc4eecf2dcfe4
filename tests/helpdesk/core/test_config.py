"""The settings object: fixed environment names and refusing placeholder secrets in production."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from helpdesk.core.config import Settings


def test_fixed_environment_names_reach_the_settings(monkeypatch):
    monkeypatch.setenv("CAREDESK_DATABASE_URL", "postgresql+psycopg://u:p@db:5432/caredesk")
    monkeypatch.setenv("CAREDESK_REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("CAREDESK_TELEGRAM__TOKEN", "123:abc")
    monkeypatch.setenv("CAREDESK_TELEGRAM__SECRET_TOKEN", "s3cret")
    monkeypatch.setenv("CAREDESK_TELEGRAM__API_BASE", "http://127.0.0.1:9999")
    monkeypatch.setenv("CAREDESK_ADMIN__EMAIL", "boss@shop.vn")
    monkeypatch.setenv("CAREDESK_ADMIN__PASSWORD", "a-long-admin-password")
    settings = Settings(_env_file=None)
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.redis_url == "redis://cache:6379/0"
    assert (settings.telegram.token, settings.telegram.secret_token) == ("123:abc", "s3cret")
    assert settings.telegram.api_base == "http://127.0.0.1:9999"
    assert settings.admin.email == "boss@shop.vn"
    assert settings.admin.password.get_secret_value() == "a-long-admin-password"


def test_the_care_channels_fixed_environment_names_reach_the_settings(monkeypatch):
    # issue #20's names: the email channel's SMTP, IMAP and sender, the ZNS step mapping and API host
    monkeypatch.setenv("CAREDESK_EMAIL__SMTP_URL", "smtp://care:pw@mail.shop.vn:587")
    monkeypatch.setenv("CAREDESK_EMAIL__IMAP_URL", "imaps://care:pw@mail.shop.vn:993/INBOX")
    monkeypatch.setenv("CAREDESK_EMAIL__FROM", "Bếp Việt <care@bepviet.vn>")
    monkeypatch.setenv("CAREDESK_ZNS__TEMPLATES", '{"thank_you": "301", "rating_request": "302", "check_in": "303"}')
    monkeypatch.setenv("CAREDESK_ZNS__API_BASE", "http://127.0.0.1:9998")
    settings = Settings(_env_file=None)
    assert settings.email.smtp_url == "smtp://care:pw@mail.shop.vn:587"
    assert settings.email.imap_url == "imaps://care:pw@mail.shop.vn:993/INBOX"
    assert settings.email.sender == "Bếp Việt <care@bepviet.vn>"
    assert settings.zns.templates == {"thank_you": "301", "rating_request": "302", "check_in": "303"}
    assert settings.zns.api_base == "http://127.0.0.1:9998"
    assert "pw@" not in repr(settings.email)  # the passwords stay out of logged settings


def test_defaults_are_the_embedded_setup(monkeypatch):
    for name in ("CAREDESK_DATABASE_URL", "CAREDESK_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)
    assert settings.database_url == "sqlite:///var/caredesk.db"
    assert settings.redis_url == ""
    assert settings.telegram.api_base == "https://api.telegram.org"


def test_production_refuses_placeholder_secrets():
    with pytest.raises(ValidationError, match="CAREDESK_SECRET_KEY"):
        Settings(_env_file=None, environment="production")


def test_production_refuses_a_placeholder_admin_password():
    with pytest.raises(ValidationError, match="CAREDESK_ADMIN__PASSWORD"):
        Settings(_env_file=None, environment="production", secret_key="x" * 32, admin={"password": "changeme"})


def test_production_starts_with_real_secrets():
    settings = Settings(_env_file=None, environment="production", secret_key="k" * 40,
                        admin={"password": "Long-Real-Password-1"})
    assert settings.cli.enabled_in(settings.environment) is False
