"""Sweep specs (TOML, overrides, grids) and the resumable runner (kills, concurrency, batches)."""

import json
import os
import pathlib
import signal

import pytest

from sweep_fakes import count_markers, fake_batch, fake_metrics, fake_run, small_grid, start_sweeps, wait_for_rows
from vicinal.lab.store import ResultStore, config_key
from vicinal.lab.sweep import (
    SweepFailed,
    expand_grid,
    load_sweep,
    parse_sweep,
    run_sweep,
    spec_from_overrides,
)

SWEEP_TOML = """
name = "spirals-eps"
seeds = 3

[base]
dataset = "spirals"
epochs = 5

[grid]
method = ["mixup", "local_mixup"]
alpha = [0.5, 1.0]

[methods.local_mixup]
eps = [1.0, 2.0]
graph = "threshold"
"""

SWEEP_OVERRIDES = [
    "name=spirals-eps",
    "seeds=3",
    "base.dataset=spirals",
    "base.epochs=5",
    "grid.method=mixup,local_mixup",
    "grid.alpha=[0.5, 1.0]",
    "methods.local_mixup.eps=1.0,2.0",
    'methods.local_mixup.graph="threshold"',
]


def write(tmp_path, text, name="sweep.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


# -- specification -------------------------------------------------------------------


def test_expand_grid_applies_method_grids_only_to_their_method(tmp_path):
    configs = expand_grid(load_sweep(write(tmp_path, SWEEP_TOML)))
    per_seed = 2 + 2 * 2  # mixup x 2 alphas, local_mixup x 2 alphas x 2 eps
    assert len(configs) == 3 * per_seed
    assert len({config_key(c) for c in configs}) == len(configs)
    mixup = [c for c in configs if c["method"] == "mixup"]
    local = [c for c in configs if c["method"] == "local_mixup"]
    assert all("eps" not in c and "graph" not in c for c in mixup)
    assert {(c["alpha"], c["eps"], c["graph"]) for c in local} == {
        (a, e, "threshold") for a in (0.5, 1.0) for e in (1.0, 2.0)
    }
    assert all(c["dataset"] == "spirals" and c["epochs"] == 5 for c in configs)
    # Seeds are the outer loop: the first block holds every configuration at seed 0.
    assert [c["seed"] for c in configs] == [s for s in range(3) for _ in range(per_seed)]


def test_overrides_build_the_same_spec_as_the_file(tmp_path):
    from_file = load_sweep(write(tmp_path, SWEEP_TOML))
    assert spec_from_overrides(SWEEP_OVERRIDES) == from_file
    assert expand_grid(spec_from_overrides(SWEEP_OVERRIDES)) == expand_grid(from_file)


def test_overrides_edit_a_loaded_spec(tmp_path):
    spec = load_sweep(write(tmp_path, SWEEP_TOML), ["seeds=[7, 9]", "base.alpha=1.0", "grid.epochs=1,2"])
    assert spec.seeds == (7, 9)
    assert spec.base["alpha"] == 1.0 and "alpha" not in spec.grid  # fixing a swept setting moves it
    assert spec.grid["epochs"] == [1, 2] and "epochs" not in spec.base
    assert spec_from_overrides(["seeds=2"], spec).seeds == (0, 1)


def test_method_table_can_fix_a_grid_setting_and_duplicates_collapse():
    spec = spec_from_overrides(["seeds=2", "grid.method=erm,mixup", "grid.alpha=0.5,1", "methods.erm.alpha=0"])
    configs = expand_grid(spec)
    erm = [c for c in configs if c["method"] == "erm"]
    assert sorted((c["seed"], c["alpha"]) for c in erm) == [(0, 0), (1, 0)]
    assert len(configs) == 2 * (1 + 2)


def test_malformed_toml_names_the_line(tmp_path):
    path = write(tmp_path, 'seeds = 3\n[grid]\nalpha = [0.5, 1.0\nmethod = "mixup"\n')
    with pytest.raises(ValueError, match=r"sweep\.toml: invalid TOML: .*line 4"):
        load_sweep(path)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[grid]\nalpha = [1.0]\n", "missing 'seeds'"),
        ("seeds = 0\n", "'seeds' must be a positive int .* got 0"),
        ("seeds = [1, 1]\n", "lists a seed twice"),
        ("seeds = 2\n[grid]\nalpha = 0.5\n", r"'grid.alpha' must be a non-empty list of values, got 0.5"),
        ("seeds = 2\n[grid]\nalpha = []\n", r"'grid.alpha' must be a non-empty list"),
        ("seeds = 2\nlr = 0.1\n", r"unknown top-level key\(s\) \['lr'\]"),
        ("seeds = 2\n[base]\nseed = 1\n", "'base.seed' is not allowed"),
        ("seeds = 2\n[base]\nalpha = 1.0\n[grid]\nalpha = [1.0]\n", r"\['alpha'\] set in both \[base\] and \[grid\]"),
        ("seeds = 2\n[grid]\nmethod = ['mixup']\n[methods.kmixup]\nk = [8]\n", "'methods.kmixup' is given but method 'kmixup' is not swept"),
        ("seeds = 2\n[base]\nmethod = 'mixup'\n[methods.mixup]\nk = []\n", r"'methods.mixup.k' is an empty list"),
        ("seeds = 2\nbase = 3\n", r"'base' must be a table"),
    ],
)
def test_bad_spec_names_the_key(tmp_path, text, match):
    with pytest.raises(ValueError, match=match):
        load_sweep(write(tmp_path, text))


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("alhpa=1.0", r"unknown key 'alhpa' \(did you mean 'alpha'\?\); expected a run setting"),
        ("grid.alpha", "must look like key=value"),
        ("base.lr=[1 2", r"cannot parse the value '\[1 2'"),
        ("methods.mixup=1", "unknown key 'methods.mixup'"),
    ],
)
def test_bad_override_is_named(override, match):
    with pytest.raises(ValueError, match=match):
        spec_from_overrides(["seeds=1", override])


def test_override_values_are_toml_bare_words_or_comma_lists():
    spec = spec_from_overrides(
        ["seeds=1", "base.method=local_mixup", "base.flag=true", "base.lr=1e-3", "base.hidden=[[100, 100]]", "grid.k=8,16"]
    )
    assert spec.base == {"method": "local_mixup", "flag": True, "lr": 1e-3, "hidden": [[100, 100]]}
    assert spec.grid == {"k": [8, 16]}


def test_parse_sweep_rejects_a_non_mapping():
    with pytest.raises(TypeError, match="expected a dict of sweep settings, got list"):
        parse_sweep([1, 2])


# -- runner --------------------------------------------------------------------------


def test_run_sweep_stores_rows_and_skips_them_next_time(tmp_path, capsys):
    markers = tmp_path / "markers"
    markers.mkdir()
    configs = small_grid(6, str(markers)) + small_grid(2, str(markers))  # duplicates run once
    summary = run_sweep(configs, fake_run, store=tmp_path / "r.db")
    assert (summary.total, summary.skipped, summary.completed, summary.failures) == (6, 0, 6, ())
    assert "6/6" in capsys.readouterr().err  # the tqdm progress bar
    assert str(summary).startswith("6 configs: 0 already stored, 6 run, 0 failed")
    again = run_sweep(configs, fake_run, store=tmp_path / "r.db", progress=False)
    assert (again.skipped, again.completed) == (6, 0)
    assert all(count_markers(markers, c) == 1 for c in configs)
    with ResultStore(tmp_path / "r.db") as store:
        rows = store.rows()
    assert [r.config for r in rows] == small_grid(6, str(markers))
    assert all(r.metrics == fake_metrics(r.config) and r.batch_size == 1 for r in rows)


def test_unwritable_store_fails_before_any_run(tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    blocker = tmp_path / "blocker"
    blocker.write_text("a regular file cannot hold a directory, even for root")
    with pytest.raises(ValueError, match="is not writable"):
        run_sweep(small_grid(3, str(markers)), fake_run, store=blocker / "results" / "r.db", progress=False)
    assert list(markers.iterdir()) == []


def test_failed_runs_are_reported_not_stored_and_retried(tmp_path):
    configs = [{**c, "fail_seed": 2} for c in small_grid(4)]
    with pytest.raises(SweepFailed, match=r"(?s)1 of 4 runs failed.*planned failure for seed 2") as info:
        run_sweep(configs, fake_run, store=tmp_path / "r.db", progress=False)
    summary = info.value.summary
    assert summary.completed == 3 and [f.config["seed"] for f in summary.failures] == [2]
    with ResultStore(tmp_path / "r.db") as store:
        assert sorted(r.seed for r in store.rows()) == [0, 1, 3]
    fixed = [{**c, "fail_seed": -1} if c["seed"] == 2 else c for c in configs]
    assert run_sweep(fixed, fake_run, store=tmp_path / "r.db", progress=False).completed == 1


def test_batch_fn_stores_one_row_per_config_as_if_run_alone(tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    configs = small_grid(8, str(markers))  # 4 mixup + 4 local_mixup
    summary = run_sweep(
        configs, store=tmp_path / "r.db", batch_fn=fake_batch, group_key=lambda c: c["method"], max_batch=3, progress=False
    )
    assert summary.completed == 8
    with ResultStore(tmp_path / "r.db") as store:
        rows = store.rows()
    assert sorted(r.seed for r in rows) == list(range(8))
    assert all(r.metrics == fake_metrics(r.config) for r in rows)
    batches = [json.loads(p.read_text()) for p in markers.glob("batch-*")]
    assert sorted(len(b) for b in batches) == [1, 1, 3, 3]
    assert all(len({c["method"] for c in b}) == 1 for b in batches)
    sizes = {r.seed: r.batch_size for r in rows}
    assert all(sizes[c["seed"]] == len(b) for b in batches for c in b)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"run_fn": None, "batch_fn": fake_batch}, ValueError, "batch_fn needs group_key"),
        ({"batch_fn": fake_batch, "group_key": len}, ValueError, "give run_fn or batch_fn, not both"),
        ({"group_key": len}, ValueError, "group_key is only used with batch_fn"),
        ({"run_fn": None, "batch_fn": fake_batch, "group_key": len, "max_batch": 0}, ValueError, "max_batch must be a positive int, got 0"),
        ({"executor": "slurm"}, ValueError, "executor must be 'local' or 'ray', got 'slurm'"),
        ({"workers": 0}, ValueError, "workers must be a positive int, got 0"),
        ({"workers": 2, "run_fn": lambda c: {}}, TypeError, "run_fn must be a top-level function"),
        ({"store": 3}, TypeError, "store must be a ResultStore or a path, got int"),
    ],
)
def test_run_sweep_rejects_bad_arguments_before_running(tmp_path, kwargs, error, match):
    markers = tmp_path / "markers"
    markers.mkdir()
    args = {"run_fn": fake_run, "store": tmp_path / "r.db", "progress": False, **kwargs}
    with pytest.raises(error, match=match):
        run_sweep(small_grid(2, str(markers)), args.pop("run_fn"), **args)
    assert list(markers.iterdir()) == []


def test_run_sweep_rejects_configs_without_seed(tmp_path):
    with pytest.raises(ValueError, match=r"configs\[1\] must contain an integer 'seed', got None"):
        run_sweep([{"seed": 0}, {"alpha": 1.0}], fake_run, store=tmp_path / "r.db", progress=False)


def test_sigkilled_sweep_resumes_without_redoing_finished_runs(tmp_path):
    store_path, markers = tmp_path / "r.db", tmp_path / "markers"
    markers.mkdir()
    n = 10
    (process,) = start_sweeps(store_path, markers, (n, 0.25, 1, 0))
    wait_for_rows(store_path, 3, process)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    with ResultStore(store_path) as store:
        finished_before = store.finished_keys()
    assert 3 <= len(finished_before) < n

    configs = small_grid(n, str(markers), sleep=0.25)  # the same configs as the killed sweep
    summary = run_sweep(configs, fake_run, store=store_path, progress=False)
    assert summary.skipped == len(finished_before) and summary.completed == n - len(finished_before)
    with ResultStore(store_path) as store:
        rows = store.rows()
    assert sorted(r.seed for r in rows) == list(range(n))
    assert all(r.metrics == fake_metrics(r.config) for r in rows)
    for config in configs:
        calls = count_markers(markers, config)
        if config_key(config) in finished_before:
            assert calls == 1, config  # finished before the kill: never redone
        else:
            assert calls in (1, 2), config  # 2 only for the run killed in flight


def test_two_concurrent_sweeps_on_one_store_lose_nothing(tmp_path):
    store_path, markers = tmp_path / "r.db", tmp_path / "markers"
    markers.mkdir()
    # Overlapping seed ranges 0..39 and 20..59, released at the same moment; each
    # takes seconds, so they write concurrently (test_store forces exact contention).
    processes = start_sweeps(store_path, markers, (40, 0.05, 1, 0), (40, 0.05, 1, 20))
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    with ResultStore(store_path) as store:
        rows = store.rows()
    assert sorted(r.seed for r in rows) == list(range(60))
    assert all(r.metrics == fake_metrics(r.config) for r in rows)
    assert all(count_markers(markers, r.config) >= 1 for r in rows)


@pytest.mark.parametrize("path", sorted((pathlib.Path(__file__).parents[1] / "sweeps").glob("*.toml")),
                         ids=lambda p: p.name)
def test_shipped_sweep_files_expand_to_valid_configs(path):
    """Every sweep file in sweeps/ parses and every config it expands to passes RunConfig's checks."""
    from vicinal.lab.config import RunConfig
    from vicinal.lab.sweep import expand_grid, load_sweep
    configs = expand_grid(load_sweep(path))
    assert configs and all(RunConfig.from_dict(c) for c in configs)
