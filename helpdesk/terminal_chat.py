"""``caredesk chat``: a customer on the built-in "cli" channel, talking to a running server over HTTP.

It posts what is typed to ``/webhooks/cli`` and reads the shop's replies from ``/webhooks/cli/messages``.
Each reply is printed once: one lock covers asking and printing, and a reply is printed only if it is
newer than the last one shown. When the server stops answering, what is typed is kept (with its
message id, so a post that did arrive before the connection broke is not stored twice) and sent, in
order, as soon as it answers again; whatever is still unsent when the chat ends is listed as not sent.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape

#: how often the chat asks for new replies while nothing is being sent
POLL_INTERVAL_S = 0.5
#: after a message is sent, how long to wait for the first reply before prompting again
REPLY_WAIT_S = 5.0


class ServerGone(Exception):
    """The server did not answer (refused, reset, timed out, or a 502/503/504 in front of it)."""


class TerminalChat:
    """One customer's chat session with a CareDesk server."""

    def __init__(self, client: httpx.Client, console: Console, *, sender_id: str, name: str, server: str):
        self.client = client
        self.console = console
        self.sender_id = sender_id
        self.name = name
        self.server = server
        #: the id of the newest reply printed
        self.last_shown = 0
        #: typed messages the server has not accepted yet, oldest first
        self.unsent: deque[dict[str, Any]] = deque()
        #: set when the server says the cli channel is off: nothing more can be done
        self.channel_off = threading.Event()
        self.stopped = threading.Event()
        self._down = False
        self._read_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._poller: threading.Thread | None = None

    # -- the server's state ------------------------------------------------------------------------

    def _went_down(self, problem: str) -> None:
        if not self._down:
            self._down = True
            self.console.print(f"[red]CareDesk at {self.server} is not answering[/red] ({escape(problem)}). "
                               "What you type is kept and sent when it is back; /quit to leave.")

    def _came_back(self) -> None:
        if self._down:
            self._down = False
            self.console.print(f"[green]CareDesk at {self.server} answers again.[/green]")

    def _request(self, method: str, path: str, **options: Any) -> httpx.Response:
        try:
            response = self.client.request(method, path, **options)
        except httpx.TransportError as exc:
            raise ServerGone(str(exc) or type(exc).__name__) from exc
        if response.status_code in (502, 503, 504):
            raise ServerGone(f"HTTP {response.status_code}")
        return response

    # -- replies -----------------------------------------------------------------------------------

    def show_new_replies(self) -> int:
        """Print the replies not shown yet; how many. Raises ServerGone."""
        with self._read_lock:
            response = self._request("GET", "/webhooks/cli/messages",
                                     params={"sender_id": self.sender_id, "after": self.last_shown})
            if response.status_code == 404:
                self.console.print("[red]The cli channel is not enabled on this server.[/red]")
                self.channel_off.set()
                return 0
            if response.status_code != 200:
                raise ServerGone(f"HTTP {response.status_code}: {response.text[:200]}")
            shown = 0
            for row in response.json()["data"]:
                if row["id"] <= self.last_shown:
                    continue
                author = row["author"]
                who = "🤖 Bot" if author == "bot" else "🧑 Agent" if author == "agent" else escape(author)
                self.console.print(f"[bold cyan]{who}:[/bold cyan] {escape(row['text'])}")
                self.last_shown = row["id"]
                shown += 1
            return shown

    def wait_for_reply(self, seconds: float = REPLY_WAIT_S) -> None:
        """Ask quickly for a while after sending, so the answer shows before the next prompt."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.channel_off.is_set():
            try:
                if self.show_new_replies():
                    return
            except ServerGone as exc:
                self._went_down(str(exc))
                return
            time.sleep(0.1)

    # -- sending -----------------------------------------------------------------------------------

    def say(self, text: str) -> bool:
        """Queue ``text`` and send what is queued; True when everything typed so far was sent."""
        self.unsent.append({"sender_id": self.sender_id, "message_id": uuid.uuid4().hex, "text": text,
                            "name": self.name})
        sent = self.send_unsent()
        if not sent and self._down:
            self.console.print(f"[yellow]Kept, not sent yet[/yellow] ({len(self.unsent)} waiting).")
        return sent

    def send_unsent(self) -> bool:
        """Post the kept messages oldest first, stopping at the first the server does not take in;
        True when none is left."""
        with self._send_lock:
            while self.unsent:
                message = self.unsent[0]
                try:
                    response = self._request("POST", "/webhooks/cli", json=message)
                except ServerGone as exc:
                    self._went_down(str(exc))
                    return False
                self._came_back()
                self.unsent.popleft()
                if response.status_code != 200:
                    # refused for what it is (too long, not allowed): sending it again cannot help
                    self.console.print(f"[red]Not sent[/red] ({response.status_code}: "
                                       f"{escape(response.text[:300])}): {escape(message['text'])}")
            return True

    # -- the session -------------------------------------------------------------------------------

    def start_polling(self) -> None:
        """Ask for replies (and retry kept messages) in the background until ``stop``."""
        self._poller = threading.Thread(target=self._poll, name="caredesk-chat-poll", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self.stopped.wait(POLL_INTERVAL_S):
            if self.unsent and not self.send_unsent():
                continue
            try:
                self.show_new_replies()
            except ServerGone as exc:
                self._went_down(str(exc))
                continue
            self._came_back()

    def stop(self) -> list[str]:
        """End the session: a last try at what is kept and a last look for replies; the texts that
        were never sent."""
        self.stopped.set()
        if self._poller is not None:
            self._poller.join(timeout=15)
        if self.unsent and self.send_unsent():
            self.wait_for_reply(1.0)
        else:
            try:
                self.show_new_replies()
            except ServerGone:
                pass
        return [message["text"] for message in self.unsent]
