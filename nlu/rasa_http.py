"""The same parse API over a running Rasa server's ``POST /model/parse``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Self

import httpx

from nlu.model import ParseResult


class NLUUnavailableError(RuntimeError):
    """The NLU backend could not answer (down, timed out, or failed)."""


def _version_from_status(response: httpx.Response) -> str:
    """Return the model id from a Rasa ``GET /status`` answer, or "" when it has none."""
    if response.status_code != 200:
        return ""
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("model_id") or body.get("model_file") or "") if isinstance(body, dict) else ""


class RasaHTTPInterpreter:
    """Parses messages by calling a Rasa 3 server over HTTP (pooled connections, sync and async)."""

    def __init__(
        self,
        url: str = "http://localhost:5005",
        timeout: float = 5.0,
        token: str | None = None,
        max_concurrency: int = 8,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.token = token
        self.max_concurrency = max_concurrency
        self._client: httpx.Client | None = None
        self._async_client: httpx.AsyncClient | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._version: str = ""

    @property
    def parse_url(self) -> str:
        """Return the parse endpoint URL."""
        return f"{self.url}/model/parse"

    @property
    def version(self) -> str:
        """Return the server's model id as last seen ("" until known); never blocks."""
        return self._version

    def fetch_version(self) -> str:
        """Ask the server's ``GET /status`` for its model id (blocking); "" when unavailable."""
        try:
            self._version = _version_from_status(
                self._sync_client().get(f"{self.url}/status", params=self._params())
            )
        except httpx.HTTPError:
            pass
        return self._version

    async def afetch_version(self) -> str:
        """Ask the server's ``GET /status`` for its model id without blocking the event loop."""
        try:
            response = await self._loop_client().get(f"{self.url}/status", params=self._params())
            self._version = _version_from_status(response)
        except httpx.HTTPError:
            pass
        return self._version

    def _params(self) -> dict[str, str]:
        return {"token": self.token} if self.token else {}

    def _sync_client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout)
        return self._client

    def _loop_client(self) -> httpx.AsyncClient:
        """Return a pooled async client for the running event loop (a new one if the loop changed)."""
        loop = asyncio.get_running_loop()
        if self._async_client is None or self._async_loop is not loop or self._async_loop.is_closed():
            self._async_client = httpx.AsyncClient(timeout=self.timeout)
            self._async_loop = loop
        return self._async_client

    def _result(self, response: httpx.Response) -> ParseResult:
        if response.status_code >= 500:
            raise NLUUnavailableError(f"Rasa server at {self.url} answered HTTP {response.status_code}")
        if response.status_code != 200:
            raise NLUUnavailableError(
                f"Rasa server at {self.url} refused the parse request (HTTP {response.status_code}): "
                f"{response.text[:200]}"
            )
        try:
            payload: dict[str, Any] = response.json()
        except ValueError:
            raise NLUUnavailableError(
                f"Rasa server at {self.url} answered something that is not JSON"
            ) from None
        result = ParseResult.from_rasa(payload, self._version)
        if result.model_version:
            self._version = result.model_version
        return result

    def _unavailable(self, exc: httpx.HTTPError) -> NLUUnavailableError:
        if isinstance(exc, httpx.TimeoutException):
            return NLUUnavailableError(f"Rasa server at {self.url} did not answer within {self.timeout} s")
        if isinstance(exc, httpx.ConnectError):
            return NLUUnavailableError(f"Rasa server at {self.url} is not reachable ({exc})")
        return NLUUnavailableError(f"Rasa server at {self.url} failed: {exc}")

    def parse(self, text: str) -> ParseResult:
        """Interpret one message via Rasa."""
        try:
            response = self._sync_client().post(self.parse_url, json={"text": text}, params=self._params())
        except httpx.HTTPError as exc:
            raise self._unavailable(exc) from None
        if not self._version and response.status_code == 200:
            self.fetch_version()
        return self._result(response)

    async def aparse(self, text: str) -> ParseResult:
        """Interpret one message via Rasa without blocking the event loop."""
        try:
            response = await self._loop_client().post(
                self.parse_url, json={"text": text}, params=self._params()
            )
        except httpx.HTTPError as exc:
            raise self._unavailable(exc) from None
        if not self._version and response.status_code == 200:
            await self.afetch_version()
        return self._result(response)

    async def aparse_batch(self, texts: Sequence[str]) -> list[ParseResult]:
        """Interpret many messages concurrently (at most ``max_concurrency`` requests in flight)."""
        semaphore = asyncio.Semaphore(self.max_concurrency)

        async def one(text: str) -> ParseResult:
            """Parse one text within the concurrency limit."""
            async with semaphore:
                return await self.aparse(text)

        return list(await asyncio.gather(*(one(t) for t in texts)))

    def parse_batch(self, texts: Sequence[str]) -> list[ParseResult]:
        """Interpret many messages (sequential requests over one pooled connection)."""
        return [self.parse(text) for text in texts]

    def close(self) -> None:
        """Close the pooled synchronous connection."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close the pooled connections (sync and async)."""
        self.close()
        if self._async_client is not None:
            await self._async_client.aclose()
            self._async_client = None
            self._async_loop = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
