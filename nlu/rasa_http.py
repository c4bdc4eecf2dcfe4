"""The same parse API over a running Rasa server's ``POST /model/parse``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Self

import httpx

from nlu.model import ParseResult


class NLUUnavailableError(RuntimeError):
    """The NLU backend could not answer (down, timed out, or failed)."""


class RasaHTTPInterpreter:
    """Parses messages by calling a Rasa 3 server over HTTP."""

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
        self._version: str = ""

    @property
    def parse_url(self) -> str:
        """Return the parse endpoint URL."""
        return f"{self.url}/model/parse"

    @property
    def version(self) -> str:
        """Return the model version reported by the last answer (or the server's /status)."""
        if not self._version:
            try:
                response = self._sync_client().get(f"{self.url}/status", params=self._params())
                if response.status_code == 200:
                    body = response.json()
                    self._version = str(body.get("model_id") or body.get("model_file") or "")
            except (httpx.HTTPError, ValueError):
                pass
        return self._version

    def _params(self) -> dict[str, str]:
        return {"token": self.token} if self.token else {}

    def _sync_client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout)
        return self._client

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
        return self._result(response)

    async def aparse(self, text: str, client: httpx.AsyncClient | None = None) -> ParseResult:
        """Interpret one message via Rasa without blocking the event loop."""
        try:
            if client is not None:
                response = await client.post(self.parse_url, json={"text": text}, params=self._params())
            else:
                async with httpx.AsyncClient(timeout=self.timeout) as own_client:
                    response = await own_client.post(
                        self.parse_url, json={"text": text}, params=self._params()
                    )
        except httpx.HTTPError as exc:
            raise self._unavailable(exc) from None
        return self._result(response)

    async def aparse_batch(self, texts: Sequence[str]) -> list[ParseResult]:
        """Interpret many messages concurrently (bounded by ``max_concurrency``)."""
        semaphore = asyncio.Semaphore(self.max_concurrency)
        async with httpx.AsyncClient(timeout=self.timeout) as client:

            async def one(text: str) -> ParseResult:
                """Parse one text within the concurrency limit."""
                async with semaphore:
                    return await self.aparse(text, client)

            return list(await asyncio.gather(*(one(t) for t in texts)))

    def parse_batch(self, texts: Sequence[str]) -> list[ParseResult]:
        """Interpret many messages (sequential requests over one connection)."""
        return [self.parse(text) for text in texts]

    def close(self) -> None:
        """Close the pooled HTTP connection."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
