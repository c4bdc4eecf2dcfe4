"""Getting a database ready to serve: its migrations and the first admin account.

``caredesk migrate`` runs this once per deploy (with the first-boot NLU model); every server and
worker also runs it when it starts, where it costs one query at head. Both steps are safe when
several processes run them at the same moment (replicas starting together, a migrate job racing a
server): migrations wait for each other (``core.db.migrate``), and the admin is created by one.
"""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from helpdesk.agents.service import ensure_admin
from helpdesk.core.config import AdminSettings
from helpdesk.core.errors import Conflict
from helpdesk.core.db import migrate

log = logging.getLogger(__name__)


def prepare_database(engine: Engine, admin: AdminSettings) -> None:
    """Apply the migrations and make sure the first admin exists."""
    migrate(engine)
    try:
        _ensure_admin(engine, admin)
    except (IntegrityError, Conflict):
        # another process created the account between this one's look and its insert (the unique
        # email refused the insert, or create_agent's own look saw the other's row)
        log.info("the first admin was created by another process")
        _ensure_admin(engine, admin)


def _ensure_admin(engine: Engine, admin: AdminSettings) -> None:
    with Session(engine) as session:
        ensure_admin(session, email=admin.email, password=admin.password.get_secret_value(), name=admin.name)
        session.commit()
