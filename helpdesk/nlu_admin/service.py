"""The NLU model the running server answers with, and switching it without a restart."""

from __future__ import annotations

import logging
import threading

from nlu import Interpreter, ParseResult, RasaHTTPInterpreter

from helpdesk.core.errors import ServiceUnavailable
from helpdesk.nlu_admin.store import DatabaseModelStore

log = logging.getLogger(__name__)


class ModelHolder:
    """Holds the active interpreter; a switch replaces one reference, so requests never see half a model."""

    def __init__(self, store: DatabaseModelStore, rasa_url: str = "", rasa_timeout_s: float = 5.0):
        #: the database's models, unpacked into this host's cache
        self.store = store
        self._lock = threading.Lock()
        self._interpreter: Interpreter | RasaHTTPInterpreter | None = None
        if rasa_url:
            self._interpreter = RasaHTTPInterpreter(rasa_url, timeout=rasa_timeout_s)

    @property
    def uses_rasa(self) -> bool:
        """Whether parsing goes to a Rasa server."""
        return isinstance(self._interpreter, RasaHTTPInterpreter)

    @property
    def ready(self) -> bool:
        """Whether a model is loaded (or a Rasa server configured)."""
        return self._interpreter is not None

    @property
    def version(self) -> str | None:
        """The version of the model answering now."""
        interpreter = self._interpreter
        return getattr(interpreter, "version", None) if interpreter is not None else None

    def load_active(self) -> bool:
        """Load the store's active model (no-op with a Rasa backend); whether one is loaded now.

        A database without models takes those of an older install's models directory first
        (``DatabaseModelStore.adopt_file_store``).
        """
        if self.uses_rasa:
            return True
        version = self.store.active_version() or self.store.adopt_file_store()
        if version is None:
            log.warning("no active NLU model in the database; train one with `caredesk prepare`")
            return False
        interpreter = self.store.load(version)
        with self._lock:
            self._interpreter = interpreter
        log.info("NLU model %s loaded", interpreter.version)
        try:
            self.store.prune_cache()
        except OSError:
            log.warning("could not tidy the NLU model cache in %s", self.store.cache_root, exc_info=True)
        return True

    def activate(self, version: str) -> str:
        """Make ``version`` the active model and answer with it from now on.

        The model is loaded (unpacked from the database if need be) before the active pointer moves:
        a version that cannot be loaded is refused here and never becomes what the other processes
        switch to.
        """
        interpreter = self.store.load(version)
        self.store.activate(version)
        with self._lock:
            self._interpreter = interpreter
        log.info("NLU model %s activated", version)
        return version

    def interpreter_for(self, version: str) -> Interpreter | None:
        """The loaded interpreter when it is ``version`` (spares loading it again)."""
        interpreter = self._interpreter
        return interpreter if isinstance(interpreter, Interpreter) and interpreter.version == version else None

    def _current(self) -> Interpreter | RasaHTTPInterpreter:
        interpreter = self._interpreter
        if interpreter is None:
            raise ServiceUnavailable("no NLU model is loaded; train one with `caredesk prepare`")
        return interpreter

    def parse(self, text: str) -> ParseResult:
        """Parse with the current model."""
        return self._current().parse(text)

    async def aparse(self, text: str) -> ParseResult:
        """Parse with the current model without blocking the event loop on a remote backend."""
        return await self._current().aparse(text)
