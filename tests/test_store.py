"""ResultStore: keys, round trips, schema refusal, location checks, two writers."""

import math
import multiprocessing
import sqlite3

import pytest

import sweep_fakes
from vicinal import __version__
from vicinal.lab.store import SCHEMA_VERSION, ResultStore, check_store_location, config_key


def put(store, config, metrics=None):
    metrics = sweep_fakes.fake_metrics(config) if metrics is None else metrics
    return store.put(config, metrics, wall_s=0.5, started_at="2026-01-01T00:00:00", finished_at="2026-01-01T00:00:01")


def test_config_key_ignores_key_order_and_tells_values_apart():
    a = {"seed": 1, "method": "mixup", "alpha": 0.5}
    assert config_key(a) == config_key(dict(reversed(list(a.items()))))
    assert config_key(a) != config_key({**a, "alpha": 0.25})
    assert config_key(a) != config_key({**a, "seed": 2})
    assert len(config_key(a)) == 64


def test_config_key_rejects_non_json():
    with pytest.raises(TypeError, match="JSON-serialisable"):
        config_key({"seed": 0, "fn": object()})
    with pytest.raises(ValueError, match="finite"):
        config_key({"seed": 0, "eps": math.nan})


def test_put_is_idempotent_and_rows_round_trip(tmp_path):
    store = ResultStore(tmp_path / "r.db")
    config = {"method": "mixup", "alpha": 1.0, "hidden": [100, 100], "seed": 3}
    metrics = {"error": 0.25, "curve": [1.0, 0.5, math.nan]}
    assert put(store, config, metrics) is True
    assert put(store, config, {"error": 0.99}) is False
    (row,) = store.rows()
    assert row.key == config_key(config) and row.config == config and row.seed == 3
    assert row.metrics["error"] == 0.25 and row.metrics["curve"][:2] == [1.0, 0.5]
    assert math.isnan(row.metrics["curve"][2])
    assert (row.wall_s, row.batch_size, row.version) == (0.5, 1, __version__)
    assert row.hostname and row.started_at < row.finished_at
    assert store.has(config) and store.has(row.key) and not store.has({**config, "seed": 4})
    assert len(store) == 1 and store.finished_keys() == {row.key}


def test_rows_filter_on_config_values(tmp_path):
    store = ResultStore(tmp_path / "r.db")
    for seed in range(4):
        put(store, {"method": "mixup", "seed": seed})
        put(store, {"method": "local_mixup", "eps": 1.0 + seed % 2, "seed": seed})
    assert [r.seed for r in store.rows(method="mixup")] == [0, 1, 2, 3]
    assert [r.seed for r in store.rows(method="local_mixup", eps=2.0)] == [1, 3]
    assert store.rows(eps=2.0, method="mixup") == []  # mixup rows have no eps
    assert len(store.rows()) == 8


def test_reopening_keeps_rows_in_wal_mode(tmp_path):
    path = tmp_path / "sub" / "r.db"
    with ResultStore(path) as store:
        put(store, {"seed": 0})
    with ResultStore(path) as store:
        assert len(store) == 1
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert dict(conn.execute("SELECT key, value FROM meta"))["schema_version"] == str(SCHEMA_VERSION)


def test_incompatible_schema_is_refused_and_left_unchanged(tmp_path):
    path = tmp_path / "r.db"
    with ResultStore(path) as store:
        put(store, {"seed": 0})
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    before = path.read_bytes()
    with pytest.raises(ValueError, match=rf"schema version {SCHEMA_VERSION + 1}.*left unchanged.*new store path"):
        ResultStore(path)
    assert path.read_bytes() == before
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1


def test_foreign_files_are_refused(tmp_path):
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(ValueError, match=r"not a vicinal result store \(tables \['t'\]\)"):
        ResultStore(other)
    text = tmp_path / "notes.txt"
    text.write_text("these are not the rows you are looking for" * 20)
    with pytest.raises(ValueError, match="not a vicinal result store"):
        ResultStore(text)
    with pytest.raises(ValueError, match="is a directory"):
        ResultStore(tmp_path)


@pytest.mark.parametrize(
    ("config", "metrics", "kwargs", "error", "match"),
    [
        ({"alpha": 1.0}, {}, {}, ValueError, "integer 'seed', got None"),
        ({"seed": "0"}, {}, {}, ValueError, "integer 'seed', got '0'"),
        ({"seed": 0}, [0.1], {}, TypeError, "metrics must be a dict, got list"),
        ({"seed": 0}, {"acc": object()}, {}, TypeError, "metrics must be JSON-serialisable"),
        ({"seed": 0}, {}, {"wall_s": -1.0}, ValueError, "wall_s must be a finite non-negative number, got -1.0"),
        ({"seed": 0}, {}, {"batch_size": 0}, ValueError, "batch_size must be a positive int, got 0"),
    ],
)
def test_put_rejects_bad_input(tmp_path, config, metrics, kwargs, error, match):
    store = ResultStore(tmp_path / "r.db")
    args = {"wall_s": 1.0, "started_at": "a", "finished_at": "b", **kwargs}
    with pytest.raises(error, match=match):
        store.put(config, metrics, **args)
    assert len(store) == 0


def test_location_under_a_regular_file_is_not_writable(tmp_path):
    # Root ignores permission bits, so use a path no user can create: below a file.
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match=r"is not writable \(NotADirectoryError"):
        check_store_location(blocker / "results" / "r.db")


def test_location_check_agrees_with_a_real_write(tmp_path):
    # chmod 555 stops ordinary users but not root: the check must follow what a write
    # really does, not the permission bits.
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        try:
            (locked / "probe").write_text("x")
            (locked / "probe").unlink()
            writable = True
        except PermissionError:
            writable = False
        if writable:
            assert check_store_location(locked / "r.db") == locked / "r.db"
        else:
            with pytest.raises(ValueError, match=r"is not writable \(PermissionError"):
                check_store_location(locked / "r.db")
    finally:
        locked.chmod(0o755)


def test_location_checks_free_space_and_returns_absolute_path(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"MiB free, expected at least 1e\+12 MiB"):
        check_store_location(tmp_path / "r.db", min_free_mb=1e12)
    monkeypatch.chdir(tmp_path)
    assert check_store_location("sub/r.db") == tmp_path / "sub" / "r.db"
    assert (tmp_path / "sub").is_dir() and list((tmp_path / "sub").iterdir()) == []  # probe removed


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    path = str(tmp_path / "r.db")
    ResultStore(path).close()
    context = multiprocessing.get_context("spawn")
    # Overlapping seed ranges: both processes insert seeds 40..59.
    barrier = context.Barrier(2)
    writers = [context.Process(target=sweep_fakes.write_rows, args=(path, start, 60, barrier)) for start in (0, 40)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(timeout=120)
    assert [w.exitcode for w in writers] == [0, 0]
    with ResultStore(path) as store:
        rows = store.rows()
    assert sorted(r.seed for r in rows) == list(range(100))
    assert all(r.metrics == sweep_fakes.fake_metrics(r.config) for r in rows)


def test_a_compare_out_directory_given_as_store_points_at_its_results_file(tmp_path):
    with ResultStore(tmp_path / "results.sqlite"):
        pass
    for open_it in (lambda: ResultStore(tmp_path), lambda: check_store_location(tmp_path)):
        with pytest.raises(ValueError, match=r"is a directory; did you mean .*results\.sqlite"):
            open_it()
