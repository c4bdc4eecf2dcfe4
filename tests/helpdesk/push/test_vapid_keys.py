"""The server's VAPID key: configured in the formats the tools write, kept in the database when not,
and re-sealed by ``caredesk rotate-secrets`` like the other stored secrets."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlmodel import Session

from helpdesk.channels.ledger import make_database_engine
from helpdesk.core.crypto import SecretBox
from helpdesk.push import service
from helpdesk.push.models import VAPID_KEY_ROW, VapidKeyPair
from tests.test_cli import run_caredesk

OLD_KEY = "old-secret-key-0123456789"
NEW_KEY = "new-secret-key-9876543210"


@pytest.fixture
def engine(database_url):
    from helpdesk.core.db import migrate

    engine = make_database_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


def test_a_configured_key_is_read_as_scalar_der_or_pem():
    private = ec.generate_private_key(ec.SECP256R1())
    scalar = service.b64url(private.private_numbers().private_value.to_bytes(32, "big"))
    der = service.b64url(private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    assert service.private_scalar(scalar) == service.private_scalar(der) == service.private_scalar(pem) == scalar
    with pytest.raises(ValueError, match="P-256"):
        service.private_scalar("not a key")
    other_curve = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    with pytest.raises(ValueError, match="P-256"):
        service.private_scalar(other_curve)


def test_a_configured_public_key_must_match(engine):
    keys = service.new_vapid_keys()
    with Session(engine) as session:
        assert service.vapid_keys(session, SecretBox(NEW_KEY), keys.private_key, keys.public_key) == keys
        with pytest.raises(ValueError, match="CAREDESK_VAPID_PUBLIC_KEY"):
            service.vapid_keys(session, SecretBox(NEW_KEY), keys.private_key, service.new_vapid_keys().public_key)


def test_the_stored_key_is_sealed_and_resealed_by_rotate_secrets(database_url, engine):
    with Session(engine) as session:
        made = service.vapid_keys(session, SecretBox(OLD_KEY))
        session.commit()
    with Session(engine) as session:
        row = session.get(VapidKeyPair, VAPID_KEY_ROW)
        assert made.private_key not in row.private_key  # not stored in the clear
        assert service.vapid_keys(session, SecretBox(OLD_KEY)) == made  # kept, not made again
    env = {"CAREDESK_DATABASE_URL": database_url, "CAREDESK_SECRET_KEY": NEW_KEY,
           "CAREDESK_SECRET_KEY_PREVIOUS": OLD_KEY}
    result = run_caredesk("rotate-secrets", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "web push key" in result.stdout
    with Session(engine) as session:
        assert service.vapid_keys(session, SecretBox(NEW_KEY)) == made  # the old key is no longer needed
