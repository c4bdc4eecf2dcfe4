"""Domain errors that carry the HTTP status the API answers with."""

from __future__ import annotations

import httpx
from redis import exceptions as redis_errors
from sqlalchemy import exc as sql_errors


class CareDeskError(Exception):
    """Base of every domain error; ``status`` is the HTTP status, ``reason`` the message shown."""

    status: int = 400

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class BadRequest(CareDeskError):
    """The request makes no sense for the current state of things."""

    status = 400


class Unauthorized(CareDeskError):
    """No valid credentials."""

    status = 401


class Forbidden(CareDeskError):
    """Valid credentials, not allowed to do this."""

    status = 403


class NotFound(CareDeskError):
    """No such record (or not visible to the caller)."""

    status = 404


class Conflict(CareDeskError):
    """The record is not in a state that allows this."""

    status = 409


class TooManyRequests(CareDeskError):
    """Slow down; ``retry_after`` seconds."""

    status = 429

    def __init__(self, reason: str, retry_after: int = 60):
        super().__init__(reason)
        self.retry_after = retry_after


class ServiceUnavailable(CareDeskError):
    """A dependency (database, NLU model) is not ready."""

    status = 503


def is_infrastructure_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a dependency being away — the database, Redis, the
    network — rather than something wrong with the work itself. Work that fails this way is tried
    again until the dependency returns; it is never given up on."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, redis_errors.ConnectionError | redis_errors.TimeoutError
                      | redis_errors.BusyLoadingError | redis_errors.ClusterDownError):
            return True
        if isinstance(current, sql_errors.OperationalError | sql_errors.InterfaceError | sql_errors.TimeoutError):
            return True
        if isinstance(current, sql_errors.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, ConnectionError | TimeoutError):
            return True
        if isinstance(current, httpx.TransportError):
            return True
        current = current.__cause__ or current.__context__
    return False

