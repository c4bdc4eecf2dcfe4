"""Domain errors that carry the HTTP status the API answers with."""

from __future__ import annotations


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
