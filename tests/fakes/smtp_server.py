"""A real SMTP server on loopback (aiosmtpd in its own thread) that keeps what it received, parsed with
the standard library's email parser, and can refuse chosen recipients with a chosen reply."""

from __future__ import annotations

from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

import socket

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USER, PASSWORD = "care", "s3cret"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (USER.encode(),
                                                                                           PASSWORD.encode())
    return AuthResult(success=ok)


@dataclass
class Received:
    """One message the server took."""

    sender: str
    recipients: list[str]
    message: EmailMessage


class _Handler:
    def __init__(self) -> None:
        self.received: list[Received] = []
        #: recipient -> the reply to RCPT TO (e.g. "550 5.1.1 no such user")
        self.refusals: dict[str, str] = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 (aiosmtpd's name)
        reply = self.refusals.get(address.lower())
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                      message_from_bytes(envelope.original_content or envelope.content,
                                                         policy=policy.default)))
        return "250 Message accepted for delivery"


class SmtpServer:
    """``with SmtpServer() as smtp: smtp.url`` is ``smtp://127.0.0.1:<port>``."""

    def __init__(self) -> None:
        self.handler = _Handler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, auth_require_tls=False,
                                     authenticator=_authenticate)

    @property
    def url(self) -> str:
        return f"smtp://{USER}:{PASSWORD}@127.0.0.1:{self.port}"

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def refuse(self, address: str, reply: str) -> None:
        """Answer RCPT TO ``address`` with ``reply`` from now on."""
        self.handler.refusals[address.lower()] = reply

    def stop(self) -> None:
        """Close the port: connections are refused from now on."""
        self.controller.stop()

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.controller.stop()
        except AssertionError:  # already stopped by the test
            pass
