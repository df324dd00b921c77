"""SQLite store of finished runs, keyed by a hash of their configuration.

The papers' claims are averages over many seeds and hyper-parameters, so a sweep
must survive being stopped and restarted, and several sweeps (or machines sharing a
disk) may write to one store at once.  Every finished run is one row, committed as
soon as it arrives; a killed sweep loses only the runs that were still in flight.

The file is plain SQLite (stdlib ``sqlite3``) in WAL mode, so it can be inspected
with any SQLite tool::

    sqlite3 results.db "select seed, metrics from runs"
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import socket
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from vicinal import __version__

__all__ = [
    "SCHEMA_VERSION",
    "ResultStore",
    "RunRecord",
    "canonical_json",
    "check_store_location",
    "config_key",
]

#: Layout version of the ``runs`` and ``meta`` tables.  Bump it whenever a column
#: changes meaning; stores written with another version are refused, never rewritten.
#: Version 2: rows come from randomness protocol 2 (:data:`vicinal.lab.trainer.RANDOMNESS_PROTOCOL`);
#: a version-1 row of the same config holds other random draws, so the two never share a store.
#: Version 3: protocol 3 (Local Mixup's uniform sampling includes eq. 2's diagonal) and the graph
#: settings ``quantile`` / ``relative`` in every config.
SCHEMA_VERSION = 3

_BUSY_TIMEOUT_S = 60.0  # a concurrent writer holds the lock for milliseconds

_SCHEMA = (
    """CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
)""",
    """CREATE TABLE runs (
    key         TEXT PRIMARY KEY,
    config      TEXT NOT NULL,
    seed        INTEGER NOT NULL,
    metrics     TEXT NOT NULL,
    wall_s      REAL NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    batch_size  INTEGER NOT NULL,
    version     TEXT NOT NULL,
    hostname    TEXT NOT NULL
)""",
)


def canonical_json(obj: Any) -> str:
    """Serialise ``obj`` to the one JSON text used for hashing and storage.

    Keys are sorted and separators fixed, so two equal configurations always give
    the same text.  ``1`` and ``1.0`` stay different here (TOML and JSON keep the
    distinction); run settings are canonicalised before hashing instead
    (:func:`vicinal.lab.config.canonical_config`: ``alpha = 1`` is stored as ``1.0``).

    Parameters
    ----------
    obj : Any
        A JSON-serialisable value (dicts with string keys, lists, str, int, float,
        bool, None).  NaN and infinities are rejected: they are not JSON.

    Returns
    -------
    str
        Compact JSON text.

    Raises
    ------
    TypeError
        If ``obj`` holds something JSON cannot represent (the message names it).
    ValueError
        If ``obj`` holds NaN or an infinity.
    """
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except TypeError as err:
        raise TypeError(f"expected a JSON-serialisable value, got {obj!r}: {err}") from None
    except ValueError as err:
        raise ValueError(f"expected finite numbers only in {obj!r}: {err}") from None


def config_key(config: Mapping[str, Any]) -> str:
    """Return the store key of a run configuration: sha256 of its canonical JSON.

    Parameters
    ----------
    config : Mapping[str, Any]
        JSON-serialisable run configuration (it contains ``"seed"``).

    Returns
    -------
    str
        64 hexadecimal characters.

    Raises
    ------
    TypeError
        If ``config`` is not a mapping with string keys or is not JSON-serialisable.
    """
    _check_mapping(config, "config")
    return hashlib.sha256(canonical_json(dict(config)).encode("utf-8")).hexdigest()


def _refuse_directory(path: Path) -> None:
    """A store is a file: name the one inside ``path`` when it holds what `vicinal compare --out` writes."""
    if not path.is_dir():
        return
    inside = path / "results.sqlite"
    hint = (f"did you mean {str(inside)!r}, the store `vicinal compare --out` writes?" if inside.is_file()
            else f"expected a file such as {str(inside)!r}")
    raise ValueError(f"result store path {str(path)!r} is a directory; {hint}")


def check_store_location(path: str | os.PathLike, *, min_free_mb: float = 64.0) -> Path:
    """Fail fast unless a store file can be created and grown at ``path``.

    Permission bits are not enough (root ignores them, and read-only mounts ignore
    ``os.access``), so the check creates the parent directory, writes and deletes a
    probe file next to the store, and then reads the free space.

    Parameters
    ----------
    path : str or os.PathLike
        Location of the SQLite store file.
    min_free_mb : float, default 64.0
        Free space the file system must have, in MiB.

    Returns
    -------
    pathlib.Path
        The absolute store path.

    Raises
    ------
    ValueError
        If the directory cannot be created or written, if ``path`` is a directory,
        or if less than ``min_free_mb`` MiB are free.  The message names the path.
    """
    if not isinstance(min_free_mb, (int, float)) or isinstance(min_free_mb, bool) or min_free_mb < 0:
        raise ValueError(f"min_free_mb must be a non-negative number, got {min_free_mb!r}")
    path = Path(path).expanduser().absolute()
    _refuse_directory(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # SQLite's WAL mode writes -wal and -shm files beside the store, so the
        # directory itself (not only the file) must accept new files.
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".vicinal-probe-"):
            pass
    except OSError as err:
        raise ValueError(
            f"result store location {str(path.parent)!r} is not writable "
            f"({type(err).__name__}: {err}); choose a writable directory for the store"
        ) from None
    free_mb = shutil.disk_usage(path.parent).free / 2**20
    if free_mb < min_free_mb:
        raise ValueError(
            f"result store location {str(path.parent)!r} has {free_mb:.1f} MiB free, "
            f"expected at least {min_free_mb:g} MiB; free some space or choose another disk"
        )
    return path


@dataclass(frozen=True)
class RunRecord:
    """One finished run as stored.

    Attributes
    ----------
    key : str
        :func:`config_key` of ``config``.
    config : dict
        The configuration the run function received.
    seed : int
        ``config["seed"]``.
    metrics : dict
        What the run function returned (floats, lists of floats for curves).
    wall_s : float
        Wall-clock seconds of the call that produced it.  For runs trained together
        by a batch function this is the time of the whole batch.
    started_at, finished_at : str
        ISO 8601 UTC timestamps of that call.
    batch_size : int
        Number of configurations trained in that call (1 when run alone).
    version : str
        ``vicinal.__version__`` of the process that stored it.
    hostname : str
        Machine that ran it.
    """

    key: str
    config: dict
    seed: int
    metrics: dict
    wall_s: float
    started_at: str
    finished_at: str
    batch_size: int
    version: str
    hostname: str


class ResultStore:
    """SQLite file of finished runs, safe for concurrent sweeps and for kills.

    Serves every paper protocol in the experiment system: each (method,
    hyper-parameters, seed) run is stored once under :func:`config_key`, and the
    reports average over rows.  Writes are single ``INSERT OR IGNORE`` statements
    committed at once; WAL mode and a busy timeout let several processes write the
    same file without losing rows.

    Parameters
    ----------
    path : str or os.PathLike
        Store file; created (with its parent directories) when missing.
    read_only : bool, default False
        Open an existing store for reading only (``vicinal report``): nothing is created
        or written, so a store on a read-only mount, or a file and directory without write
        permission, can be read. :meth:`put` then raises.

    Raises
    ------
    ValueError
        If the file is not SQLite, is an SQLite file that is not a vicinal store,
        was written with another :data:`SCHEMA_VERSION` (it is left unchanged), or
        cannot be opened.

    Examples
    --------
    >>> store = ResultStore("results/spirals.db")          # doctest: +SKIP
    >>> store.rows(method="local_mixup", eps=1.0)          # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike, *, read_only: bool = False) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
        if not isinstance(read_only, bool):
            raise TypeError(f"read_only must be True or False, got {read_only!r}")
        self.path = Path(path).expanduser().absolute()
        self.read_only = read_only
        _refuse_directory(self.path)
        if read_only:
            self._conn = _connect_read_only(self.path)
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        except (OSError, sqlite3.Error) as err:
            raise ValueError(f"cannot open result store {str(self.path)!r}: {err}") from None
        try:
            self._init_schema()
            # Set WAL only after the schema check, so a refused file is never modified.
            mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except BaseException:
            self._conn.close()
            raise
        if mode.lower() != "wal":
            self._conn.close()
            raise ValueError(
                f"result store {str(self.path)!r}: the file system does not support SQLite WAL "
                f"mode (got {mode!r}), which concurrent sweeps need; put the store on a local disk"
            )

    def _init_schema(self) -> None:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as err:
            raise ValueError(f"{str(self.path)!r} is not a vicinal result store (SQLite says: {err})") from None
        try:
            tables = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not tables:
                for statement in _SCHEMA:  # not executescript: it would commit first
                    self._conn.execute(statement)
                self._conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("schema_version", str(SCHEMA_VERSION)), ("created_by", __version__)],
                )
            elif "meta" not in tables or "runs" not in tables:
                raise ValueError(
                    f"{str(self.path)!r} is an SQLite file but not a vicinal result store "
                    f"(tables {sorted(tables)}); give a new path for the store"
                )
            else:
                _check_version(self._conn, self.path)
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    # -- reading -----------------------------------------------------------------

    def has(self, config_or_key: Mapping[str, Any] | str) -> bool:
        """Return whether a run is stored.

        Parameters
        ----------
        config_or_key : Mapping or str
            A configuration, or its :func:`config_key`.

        Returns
        -------
        bool
        """
        key = config_or_key if isinstance(config_or_key, str) else config_key(config_or_key)
        return self._conn.execute("SELECT 1 FROM runs WHERE key = ?", (key,)).fetchone() is not None

    def finished_keys(self) -> set[str]:
        """Return the keys of all stored runs.

        Returns
        -------
        set of str
        """
        return {r[0] for r in self._conn.execute("SELECT key FROM runs")}

    def rows(self, **filters: Any) -> list[RunRecord]:
        """Return stored runs in insertion order, optionally filtered on config values.

        Parameters
        ----------
        **filters
            ``name=value`` pairs; a run is kept when ``config[name] == value`` for
            every pair (a run whose config lacks ``name`` is dropped).

        Returns
        -------
        list of RunRecord
        """
        cursor = self._conn.execute(
            "SELECT key, config, seed, metrics, wall_s, started_at, finished_at, batch_size, "
            "version, hostname FROM runs ORDER BY rowid"
        )
        out = []
        for key, config, seed, metrics, *rest in cursor:
            config = json.loads(config)
            if all(name in config and config[name] == value for name, value in filters.items()):
                out.append(RunRecord(key, config, seed, json.loads(metrics), *rest))
        return out

    def __len__(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]

    # -- writing -----------------------------------------------------------------

    def put(
        self,
        config: Mapping[str, Any],
        metrics: Mapping[str, Any],
        *,
        wall_s: float,
        started_at: str,
        finished_at: str,
        batch_size: int = 1,
        hostname: str | None = None,
    ) -> bool:
        """Store one finished run and commit it at once.

        Idempotent: a run whose key is already stored is left as it is.

        Parameters
        ----------
        config : Mapping[str, Any]
            JSON-serialisable configuration with an integer ``"seed"``.
        metrics : Mapping[str, Any]
            JSON-serialisable metrics (NaN allowed: a diverged run is a result).
        wall_s : float
            Non-negative wall-clock seconds.
        started_at, finished_at : str
            ISO 8601 timestamps.
        batch_size : int, default 1
            Configurations trained in the same call.
        hostname : str, optional
            Machine that ran it; this machine when omitted.

        Returns
        -------
        bool
            True if the row was inserted, False if the key was already stored.

        Raises
        ------
        TypeError, ValueError
            If an argument has the wrong type or value (the message names it).
        """
        if self.read_only:
            raise ValueError(f"result store {str(self.path)!r} was opened read-only; open it with read_only=False to add runs")
        key = config_key(config)
        seed = config.get("seed")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"config must contain an integer 'seed', got {seed!r} in {dict(config)!r}")
        _check_mapping(metrics, "metrics")
        try:
            metrics_json = json.dumps(dict(metrics), sort_keys=True, separators=(",", ":"))
        except TypeError as err:
            raise TypeError(f"metrics must be JSON-serialisable, got {dict(metrics)!r}: {err}") from None
        if not isinstance(wall_s, (int, float)) or isinstance(wall_s, bool) or not math.isfinite(wall_s) or wall_s < 0:
            raise ValueError(f"wall_s must be a finite non-negative number, got {wall_s!r}")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        for name, stamp in (("started_at", started_at), ("finished_at", finished_at)):
            if not isinstance(stamp, str):
                raise TypeError(f"{name} must be an ISO 8601 str, got {stamp!r}")
        cursor = self._conn.execute(
            "INSERT OR IGNORE INTO runs (key, config, seed, metrics, wall_s, started_at, "
            "finished_at, batch_size, version, hostname) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                canonical_json(dict(config)),
                seed,
                metrics_json,
                float(wall_s),
                started_at,
                finished_at,
                batch_size,
                __version__,
                hostname if hostname is not None else socket.gethostname(),
            ),
        )
        return cursor.rowcount == 1

    def close(self) -> None:
        """Close the connection (further calls fail)."""
        self._conn.close()

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResultStore({str(self.path)!r})"


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """Open an existing store without writing anything (SQLite ``mode=ro``), then check it is a vicinal store
    of this schema version.

    A WAL-mode file needs its ``-shm`` index, which SQLite creates next to it; in a directory that cannot
    be written the file is opened ``immutable=1`` instead (no other writer can exist there).
    """
    if not path.is_file():
        raise FileNotFoundError(f"no result store at {str(path)!r}; run `vicinal sweep` or `vicinal compare` first")
    uri = path.as_uri()
    error: Exception | None = None
    for options in ("mode=ro", "mode=ro&immutable=1"):
        conn = None
        try:
            conn = sqlite3.connect(f"{uri}?{options}", uri=True, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            break
        except sqlite3.DatabaseError as err:
            if conn is not None:
                conn.close()
            error = err
    else:
        raise ValueError(f"{str(path)!r} cannot be read as a vicinal result store (SQLite says: {error})")
    try:
        if "meta" not in tables or "runs" not in tables:
            raise ValueError(f"{str(path)!r} is an SQLite file but not a vicinal result store (tables {sorted(tables)})")
        _check_version(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _check_version(conn: sqlite3.Connection, path: Path) -> None:
    meta = dict(conn.execute("SELECT key, value FROM meta"))
    found = meta.get("schema_version")
    if found != str(SCHEMA_VERSION):
        raise ValueError(
            f"result store {str(path)!r} was written with schema version {found} "
            f"(by vicinal {meta.get('created_by', '?')}); this vicinal {__version__} reads "
            f"schema version {SCHEMA_VERSION}. The file was left unchanged: read it with the "
            f"vicinal version that wrote it, or give a new store path for new runs."
        )


def _check_mapping(value: Any, name: str) -> None:
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict, got {type(value).__name__}: {value!r}")
    bad = [k for k in value if not isinstance(k, str)]
    if bad:
        raise TypeError(f"{name} keys must be str, got {bad!r}")
