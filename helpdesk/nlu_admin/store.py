"""NLU models kept in the database, so that every replica of a deployment, on any host, answers with
the same active model.

Each version is one row of ``nlu_models`` (its directory packed as a tar.gz, with its SHA-256), and
the single row of ``nlu_active_model`` names the active one. A process loads a version from a local
cache directory (``settings.nlu.models_dir``), unpacking the artefact there the first time: the
archive is checked against its checksum, unpacked into a temporary directory and moved into place
with ``os.replace``, so two processes unpacking at once never see half a model.

``DatabaseModelStore`` offers the part of ``nlu.ModelStore``'s interface the helpdesk uses, so the
callers did not change shape; ``nlu.ModelStore`` stays the standalone library's file store, and is
what an older install left in its models directory (``adopt_file_store`` imports it).

Every method is synchronous (database and file I/O): callers on the event loop run them in a thread.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from helpdesk.core.db import insert_unless_present, utcnow
from helpdesk.nlu_admin.models import NluActiveModel, NluModel
from nlu import Interpreter, ModelLoadError, ModelStore, TrainingData, load_model, train_model
from nlu.model import METADATA_FILE, ProgressCallback, read_model_metadata
from nlu.store import VERSION_PATTERN, ModelInfo

log = logging.getLogger(__name__)

#: where unpacked versions are kept, inside the models directory (a leading dot: the file store and
#: ``nlu`` commands pointed at the same directory ignore it)
CACHE_DIR = ".db-cache"
#: where candidates are trained before they are stored (see ``helpdesk.training.candidate``)
TRAINING_DIR = ".training"
#: an unpacking or training directory left this long ago was left by a process that died
STALE_WORK_S = 24 * 3600
#: an unpacked copy of a version the database no longer holds is deleted after this long unchanged
UNUSED_COPY_S = 3600
#: gzip level of the packed models: level 1 packs in a third of level 6's time for 8% more bytes
COMPRESS_LEVEL = 1

_models = NluModel.__table__
_active = NluActiveModel.__table__
_insert_model = insert_unless_present(_models, ["version"], _models.c.id)
_insert_active = insert_unless_present(_active, ["id"], _active.c.id)
#: the one row of ``nlu_active_model``
ACTIVE_ROW = 1


def _plain_owner(member: tarfile.TarInfo) -> tarfile.TarInfo:
    member.uid = member.gid = 0
    member.uname = member.gname = ""
    return member


def pack_model(model_dir: Path) -> bytes:
    """A model directory as a gzip-compressed tar archive (paths relative to the directory).

    The same directory always packs to the same bytes (no packing time, owner or order in the
    archive), so importing it again finds the copy already unpacked under the same checksum.
    """
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=COMPRESS_LEVEL, mtime=0) as compressed:
        with tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for path in sorted(model_dir.rglob("*")):
                archive.add(path, arcname=path.relative_to(model_dir).as_posix(), recursive=False,
                            filter=_plain_owner)
    return buffer.getvalue()


def checksum_of(artefact: bytes) -> str:
    """The SHA-256 of a packed model, as hex."""
    return hashlib.sha256(artefact).hexdigest()


def _active_of(connection: Connection) -> str | None:
    """The version the active pointer names."""
    return connection.execute(select(_active.c.version).where(_active.c.id == ACTIVE_ROW)).scalar()


def _column_of(connection: Connection, column: Any, version: str) -> Any:
    """One column of one version's row (None when the version is unknown)."""
    return connection.execute(select(column).where(_models.c.version == version)).scalar()


def _check_version(version: str) -> str:
    if not VERSION_PATTERN.match(version):
        raise ValueError(f"invalid model version {version!r}")
    return version


def _created_at(meta: dict[str, Any]) -> datetime:
    """The training time a model's metadata gives (now when it gives none that reads)."""
    try:
        created = datetime.fromisoformat(str(meta.get("created_at", "")))
    except ValueError:
        return utcnow()
    return created if created.tzinfo is not None else created.replace(tzinfo=UTC)


class DatabaseModelStore:
    """Versioned NLU models in the database, unpacked on first use into ``cache_root``."""

    def __init__(self, engine: Engine, models_dir: str | Path) -> None:
        self.engine = engine
        #: the local directory: the unpacked versions live under it, and an older install's file store
        self.root = Path(models_dir)

    @property
    def cache_root(self) -> Path:
        """Where this process keeps unpacked versions."""
        return self.root / CACHE_DIR

    @property
    def training_root(self) -> Path:
        """Where candidates are trained before they are stored."""
        return self.root / TRAINING_DIR

    def _cache_dir(self, version: str, checksum: str) -> Path:
        # the checksum in the name: a cached copy is always of the artefact the database holds now
        return self.cache_root / f"{_check_version(version)}-{checksum[:16]}"

    # -- reading ---------------------------------------------------------------------------------

    def active_version(self) -> str | None:
        """The active version, or None when none is (one indexed read, no artefact)."""
        with self.engine.connect() as connection:
            return _active_of(connection)

    def versions(self) -> list[ModelInfo]:
        """Every stored version, oldest first."""
        with self.engine.connect() as connection:
            active = _active_of(connection)
            rows = connection.execute(select(_models.c.version, _models.c.meta, _models.c.checksum)).all()
        infos = [self._info(row.version, row.meta, row.checksum, row.version == active) for row in rows]
        return sorted(infos, key=lambda info: (info.created_at, info.version))

    def _info(self, version: str, meta: dict[str, Any], checksum: str, active: bool) -> ModelInfo:
        return ModelInfo(version=version, path=self._cache_dir(version, checksum),
                         created_at=str(meta.get("created_at", "")),
                         training_data_hash=str(meta.get("training_data_hash", "")),
                         intents=list(meta.get("intents", [])), config=meta.get("config", {}),
                         metrics=meta.get("metrics"), active=active)

    def info(self, version: str) -> ModelInfo:
        """The ModelInfo of one version (KeyError if unknown)."""
        with self.engine.connect() as connection:
            row = connection.execute(select(_models.c.version, _models.c.meta, _models.c.checksum)
                                     .where(_models.c.version == version)).first()
            active = _active_of(connection)
        if row is None:
            raise KeyError(f"no model version {version!r} in the database")
        return self._info(row.version, row.meta, row.checksum, row.version == active)

    def model_path(self, version: str) -> Path:
        """The local directory of ``version``, unpacked from the database if this host has not yet
        (KeyError if unknown, ModelLoadError if its artefact is corrupt)."""
        with self.engine.connect() as connection:
            checksum = _column_of(connection, _models.c.checksum, version)
        if checksum is None:
            raise KeyError(f"no model version {version!r} in the database")
        target = self._cache_dir(version, checksum)
        if (target / METADATA_FILE).is_file():
            return target
        with self.engine.connect() as connection:
            artefact = _column_of(connection, _models.c.artefact, version)
        if artefact is None:
            raise KeyError(f"no model version {version!r} in the database")
        artefact = bytes(artefact)  # PostgreSQL's driver gives a memoryview
        if checksum_of(artefact) != checksum:
            raise ModelLoadError(f"model version {version!r} in the database is corrupt: its artefact "
                                 f"does not match its checksum {checksum[:16]}…")
        self._unpack(artefact, target)
        return target

    def _unpack(self, artefact: bytes, target: Path) -> None:
        """Unpack into a temporary directory beside ``target``, then move it into place at once."""
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            with tarfile.open(fileobj=io.BytesIO(artefact), mode="r:gz") as archive:
                archive.extractall(staging, filter="data")  # no absolute paths, links out or devices
            if not (staging / METADATA_FILE).is_file():
                raise ModelLoadError(f"{target.name}: the packed model has no {METADATA_FILE}")
            try:
                os.replace(staging, target)
            except OSError:
                if not (target / METADATA_FILE).is_file():
                    raise
                # another process unpacked the same version first: use theirs
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ModelLoadError(f"{target.name}: cannot unpack the stored model: {exc}") from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def load(self, version: str) -> Interpreter:
        """Load one version (KeyError if unknown, ModelLoadError if it cannot be loaded)."""
        return load_model(self.model_path(version))

    def load_active(self) -> Interpreter:
        """Load the active version (ModelLoadError when none is active)."""
        version = self.active_version()
        if version is None:
            raise ModelLoadError("no active NLU model in the database: run `caredesk prepare`")
        return self.load(version)

    # -- writing ---------------------------------------------------------------------------------

    def add(self, model_dir: str | Path, activate: bool = False, *, move: bool = False) -> str:
        """Store a trained model directory (nothing happens when its version is stored already);
        return its version. ``move``: the directory then becomes this host's cached copy (it is
        what the artefact unpacks to), instead of being left where it is."""
        model_dir = Path(model_dir)
        meta = read_model_metadata(model_dir)
        version = _check_version(str(meta["version"]))
        artefact = pack_model(model_dir)
        checksum = checksum_of(artefact)
        with self.engine.begin() as connection:
            self._insert(connection, version, meta, artefact, checksum)
            stored = _column_of(connection, _models.c.checksum, version)
        if move and stored == checksum:
            target = self._cache_dir(version, checksum)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(model_dir, target)
            except OSError:  # already cached (another process unpacked it): ours is not needed
                shutil.rmtree(model_dir, ignore_errors=True)
        if activate:
            self.activate(version)
        return version

    def _insert(self, connection: Connection, version: str, meta: dict[str, Any], artefact: bytes,
                checksum: str) -> bool:
        """Insert a version unless it is there; whether this call inserted it."""
        statement = _insert_model[connection.dialect.name]
        values = {"version": version, "created_at": _created_at(meta), "meta": meta, "artefact": artefact,
                  "size": len(artefact), "checksum": checksum}
        row = connection.execute(statement, values).first()
        return row is not None

    def train_and_add(self, data: TrainingData | Sequence[str | Path], config_path: str | Path | None = None,
                      progress: ProgressCallback | None = None, activate: bool = False) -> str:
        """Train a model, store it (already cached here) and return its version."""
        self.training_root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="train-", dir=self.training_root))
        try:
            model_dir = train_model(data, staging / "model", config_path=config_path, progress=progress)
            return self.add(model_dir, activate=activate, move=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def activate(self, version: str) -> None:
        """Make ``version`` the active model: one row changes in one transaction (KeyError if unknown)."""
        with self.engine.begin() as connection:
            if connection.execute(select(_models.c.id).where(_models.c.version == version)).first() is None:
                raise KeyError(f"no model version {version!r} in the database")
            values = {"version": version, "activated_at": utcnow()}
            moved = connection.execute(update(_active).where(_active.c.id == ACTIVE_ROW).values(**values))
            if moved.rowcount == 0 and connection.execute(
                    _insert_active[connection.dialect.name], {"id": ACTIVE_ROW, **values}).first() is None:
                # a first activation elsewhere made the row between our two statements
                connection.execute(update(_active).where(_active.c.id == ACTIVE_ROW).values(**values))

    def activate_if_none(self, connection: Connection, version: str) -> str:
        """Make ``version`` active unless a version is already; return the active one."""
        connection.execute(_insert_active[connection.dialect.name],
                           {"id": ACTIVE_ROW, "version": version, "activated_at": utcnow()})
        return _active_of(connection)

    def set_metrics(self, version: str, metrics: dict[str, Any]) -> None:
        """Record test metrics in a version's stored metadata."""
        with self.engine.begin() as connection:
            meta = _column_of(connection, _models.c.meta, version)
            if meta is None:
                raise KeyError(f"no model version {version!r} in the database")
            connection.execute(update(_models).where(_models.c.version == version)
                               .values(meta={**meta, "metrics": metrics}))

    def remove(self, version: str) -> None:
        """Delete a version that is not active (ValueError if it is, KeyError if unknown)."""
        try:
            with self.engine.begin() as connection:
                checksum = _column_of(connection, _models.c.checksum, version)
                if checksum is None:
                    raise KeyError(f"no model version {version!r} in the database")
                active = _active_of(connection)
                if version == active:
                    raise ValueError(f"model version {version!r} is active; activate another one first")
                connection.execute(delete(_models).where(_models.c.version == version))
        except IntegrityError:  # activated elsewhere meanwhile: the foreign key kept it
            raise ValueError(f"model version {version!r} is active; activate another one first") from None
        shutil.rmtree(self._cache_dir(version, checksum), ignore_errors=True)

    def prune_cache(self) -> list[str]:
        """Delete this host's unpacked copies of versions the database no longer holds, and the
        directories of unpacks or trainings that a dead process left; returns the names deleted.

        Only what has not changed for a while goes: another process on this host may have just
        unpacked (or stored) a version this one did not see yet, and may be reading it.
        """
        with self.engine.connect() as connection:
            kept = {self._cache_dir(row.version, row.checksum).name
                    for row in connection.execute(select(_models.c.version, _models.c.checksum))}
        now = time.time()
        deleted = []
        for root in (self.cache_root, self.training_root):
            if not root.is_dir():
                continue
            for path in root.iterdir():
                in_progress = path.name.startswith(".") or root == self.training_root
                if root == self.cache_root and path.name in kept:
                    continue
                try:
                    age = now - path.stat().st_mtime
                except FileNotFoundError:
                    continue
                if age > (STALE_WORK_S if in_progress else UNUSED_COPY_S):
                    shutil.rmtree(path, ignore_errors=True)
                    deleted.append(path.name)
        return deleted

    # -- an older install's models directory ---------------------------------------------------------

    def adopt_file_store(self) -> str | None:
        """When the database holds no model yet and the models directory is a file store with an
        active version (what CareDesk kept before models moved to the database), import every version
        of it and make the same one active. Returns the active version, or None when there was
        nothing to import. Safe to call again, and from two processes at once: versions are inserted
        only when absent, and the pointer is set only when no version is active."""
        if self.active_version() is not None:
            return self.active_version()
        files = ModelStore(self.root)
        file_active = files.active_version()
        if file_active is None:
            return None
        imported = 0
        for info in files.versions():
            try:
                meta = read_model_metadata(info.path)
                artefact = pack_model(info.path)
            except (ModelLoadError, OSError) as exc:
                log.warning("model version %s in %s is not imported: %s", info.version, self.root, exc)
                continue
            with self.engine.begin() as connection:
                imported += self._insert(connection, info.version, meta, artefact, checksum_of(artefact))
        with self.engine.begin() as connection:
            active = self.activate_if_none(connection, file_active)
        log.info("imported %d NLU model version(s) from %s into the database; active: %s",
                 imported, self.root, active)
        return active
