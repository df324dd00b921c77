"""A newcomer's path through the `vicinal` command (issue 13): every mistake is refused before training with
the setting named, and every output says what it is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vicinal.lab.cli import build_parser, main
from vicinal.lab.store import ResultStore

ROOT = Path(__file__).resolve().parents[1]
TINY = ["epochs=1", "dataset_params.n_per_class=40", "model_params.widths=[8]", "batch_size=16", "k=4"]


def _python(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


_NO_LAB = "import sys\nfor name in ('sklearn', 'matplotlib', 'tqdm'): sys.modules[name] = None\n"


def test_help_works_without_the_lab_extra_and_commands_name_it():
    done = _python(_NO_LAB + "from vicinal.lab.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit as e:\n"
                   "    print('exit', e.code)\nprint('loaded', sorted(m for m in ('sklearn', 'matplotlib', 'tqdm') "
                   "if sys.modules.get(m) is not None))")
    assert "compare" in done.stdout and "exit 0" in done.stdout and "loaded []" in done.stdout, done.stderr
    done = _python(_NO_LAB + "from vicinal.lab.cli import main\nsys.exit(main(['list']))")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert 'pip install "vicinal[lab]"' in done.stderr and "'sklearn'" in done.stderr


def test_lab_package_says_which_extra_on_attribute_access():
    done = _python(_NO_LAB + "import vicinal.lab\ntry:\n    vicinal.lab.load_dataset\nexcept ModuleNotFoundError as e:"
                   "\n    print(e)")
    assert 'pip install "vicinal[lab]"' in done.stdout, done.stderr


def test_compare_help_shows_a_plain_percent_sign():
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices
    for name in ("compare", "report"):
        text = sub[name].format_help()
        assert "95%" in text and "95%%" not in text


def test_list_mentions_each_datasets_parameters(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "cifar10        root=<required>, standardize=False" in out
    assert "csv            path=<required>" in out and "spirals" in out and "noise=" in out
    assert "mlp" in out and "widths=" in out


@pytest.mark.parametrize("argv, match", [
    (["compare", "--seeds", "0"], "--seeds: expected a positive integer (1 or more), got 0"),
    (["compare", "--seeds", "two"], "--seeds: expected a positive integer, got 'two'"),
    (["sweep", "--workers", "-1"], "--workers: expected a positive integer"),
    (["sweep", "--max-batch", "0"], "--max-batch: expected a positive integer"),
])
def test_non_positive_counts_are_refused_by_the_parser(argv, match, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and match in capsys.readouterr().err


def test_compare_on_cifar10_without_root_fails_before_training(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--dataset", "cifar10", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "dataset 'cifar10' needs dataset_params.root" in err and "--set dataset_params.root=" in err
    assert err.count("\n") == 1 and not out.exists()  # one line, no config dump, no store


def test_compare_kmixup_k_bigger_than_batch_fails_before_training(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--methods", "kmixup", "--out", str(out), "--set", "k=64", "batch_size=32"]) == 2
    assert "k=64 needs batches of at least 2k=128" in capsys.readouterr().err and not out.exists()


def test_checkpoint_dir_that_is_a_file_is_refused_before_training(tmp_path, capsys):
    blocker = tmp_path / "ckpt"
    blocker.write_text("a file")
    store = tmp_path / "r.sqlite"
    assert main(["sweep", "--store", str(store), "--checkpoint-dir", str(blocker), "--set", "seeds=1", *TINY]) == 2
    err = capsys.readouterr().err
    assert f"--checkpoint-dir {str(blocker)!r} is a file; expected a directory" in err
    assert not store.exists()


def test_compare_methods_typo_gets_did_you_mean(tmp_path, capsys):
    assert main(["compare", "--methods", "erm,mixpu", "--out", str(tmp_path / "c"), "--set", *TINY]) == 2
    assert "did you mean 'mixup'" in capsys.readouterr().err


def test_sweep_set_epochs_is_accepted_like_compare(tmp_path, capsys):
    store = tmp_path / "r.sqlite"
    assert main(["sweep", "--store", str(store), "--workers", "1", "--set", "seeds=2", "epochs=1", *TINY[1:]]) == 0
    with ResultStore(store, read_only=True) as results:
        assert {r.config["epochs"] for r in results.rows()} == {1} and len(results) == 2


def test_ray_address_that_does_not_answer_fails_with_a_message(tmp_path, capsys):
    pytest.importorskip("ray")  # the ray extra; make test installs it
    code = main(["sweep", "--store", str(tmp_path / "r.sqlite"), "--executor", "ray", "--address", "127.0.0.1:1",
                 "--set", "seeds=1", *TINY])
    err = capsys.readouterr().err
    assert code == 2 and "cannot reach the Ray cluster at '127.0.0.1:1'" in err and "ray start --head" in err


def test_image_datasets_get_the_papers_convolutional_presets():
    from vicinal.lab.compare import compare_configs

    expected = {"cifar10": "preact_resnet18", "cifar100": "preact_resnet18", "mnist": "lenet",
                "fashion_mnist": "lenet"}
    for dataset, model in expected.items():
        (config,) = compare_configs(dataset, ["erm"], 1, ["dataset_params.root=/data/x"])
        assert config["model"] == model and config["model_params"] == {}
        assert config["dataset_params"] == {"root": "/data/x"}
    (cifar,) = compare_configs("cifar10", ["kmixup"], 1, ["dataset_params.root=/d"])
    assert (cifar["lr"], cifar["momentum"], cifar["weight_decay"], cifar["milestones"]) == (0.1, 0.9, 1e-4, [100, 150])


# --------------------------------------------------------------------------- report


def _store_with(tmp_path, rows):
    from vicinal.lab.config import canonical_config

    path = tmp_path / "r.sqlite"
    with ResultStore(path) as store:
        for settings, metrics in rows:
            store.put(canonical_config(settings), metrics, wall_s=0.0, started_at="a", finished_at="b")
    return path


def _eps_store(tmp_path):
    rows = []
    for seed in range(3):
        rows.append((dict(method="erm", seed=seed), {"test_error": 0.30 + seed / 100}))
        for eps in (0.5, 1.0):
            rows.append((dict(method="local_mixup", eps=eps, seed=seed), {"test_error": 0.20 + eps / 10 + seed / 100}))
    return _store_with(tmp_path, rows)


def test_report_baseline_without_the_by_setting_pairs_on_what_it_has(tmp_path, capsys):
    store = _eps_store(tmp_path)
    assert main(["report", str(store), "--by", "method,eps", "--metrics", "test_error", "--baseline",
                 "method=erm"]) == 0
    out = capsys.readouterr().out
    paired = out.split("paired difference")[1]
    assert "n/a" not in paired
    # local_mixup at eps 0.5: 0.25 + s/100 - (0.30 + s/100) = -0.05 for every seed, n = 3 (eps 1.0: 0)
    assert "local_mixup  0.5  3  -0.05 ± 0" in paired and "local_mixup  1.0  3  " in paired
    assert "paired on seed; method=erm runs have no eps, so every eps value is compared with the same" in out


def test_report_names_a_baseline_that_matches_nothing(tmp_path, capsys):
    store = _eps_store(tmp_path)
    assert main(["report", str(store), "--baseline", "method=emr"]) == 2
    assert "no stored run has method='emr' (did you mean 'erm'?)" in capsys.readouterr().err


def test_report_misspelt_by_and_metric_get_did_you_mean(tmp_path, capsys):
    store = _eps_store(tmp_path)
    assert main(["report", str(store), "--by", "methd"]) == 2
    assert "did you mean 'method'" in capsys.readouterr().err
    assert main(["report", str(store), "--metrics", "test_eror"]) == 2
    assert "did you mean 'test_error'" in capsys.readouterr().err


def test_report_plot_without_out_is_refused(tmp_path, capsys):
    store = _eps_store(tmp_path)
    assert main(["report", str(store), "--plot", "eps"]) == 2
    assert "--plot eps needs --out DIR" in capsys.readouterr().err


def test_report_plot_writes_and_says_where(tmp_path, capsys):
    store = _eps_store(tmp_path)
    assert main(["report", str(store), "--metrics", "test_error", "--plot", "eps", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert f"figure: {tmp_path / 'o' / 'test_error_vs_eps.png'}" in out and f"table: {tmp_path / 'o'}" in out
    assert (tmp_path / "o" / "test_error_vs_eps.png").stat().st_size > 1000


def test_plot_against_alpha_keeps_each_eps_its_own_line(monkeypatch, tmp_path):
    import vicinal.lab.plots as plots
    from vicinal.lab.report_command import plot_by_param

    rows = [dict(config=dict(method="local_mixup", eps=eps, alpha=alpha, seed=seed),
                 metrics={"test_error": eps + alpha / 10 + seed / 1000})
            for eps in (0.5, 2.0) for alpha in (0.5, 1.0) for seed in range(2)]
    rows += [dict(config=dict(method="erm", seed=seed), metrics={"test_error": 0.3}) for seed in range(2)]
    seen = {}
    monkeypatch.setattr(plots, "plot_metric_vs_param", lambda values, samples, path, **kw: seen.update(
        values=values, samples=samples, **kw))
    plot_by_param(rows, "alpha", "test_error", tmp_path)
    assert set(seen["samples"]) == {"local_mixup, eps=0.5", "local_mixup, eps=2.0"}
    assert np.allclose(seen["samples"]["local_mixup, eps=2.0"], [[2.05, 2.1], [2.051, 2.101]])
    assert set(seen["references"]) == {"erm"} and seen["metric_name"] == "test error"


def test_plot_titles_read_as_words(tmp_path):
    import numpy as np

    from vicinal.lab.plots import plot_metric_vs_param

    figure = plot_metric_vs_param([0.5, 1.0], {"mixup": np.array([[0.1, 0.2], [0.1, 0.3]])}, tmp_path / "f.png",
                                  param_name="alpha", metric_name="test_error")
    assert figure.axes[0].get_title().startswith("Test error vs alpha")


def test_rescaled_results_carry_a_note_when_eq22_does_not_apply_or_hurts(tmp_path, capsys):
    rows = []
    for seed in range(2):
        rows.append((dict(method="mixup", seed=seed), {"test_error": 0.2, "rescaled_test_error": 0.1}))
        rows.append((dict(method="local_mixup", seed=seed), {"test_error": 0.2, "rescaled_test_error": 0.3}))
        rows.append((dict(method="kmixup", k=4, seed=seed), {"test_error": 0.2, "rescaled_test_error": 0.19}))
    store = _store_with(tmp_path, rows)
    assert main(["report", str(store), "--metrics", "test_error,rescaled_test_error"]) == 0
    out = capsys.readouterr().out
    assert "note: rescaled local_mixup: eq. 22 is derived for Mixup's random, unweighted pairs" in out
    assert "note: rescaled kmixup: eq. 22 is derived for Mixup's random, unweighted pairs; k-Mixup pairs by" in out
    assert "note: rescaled local_mixup: rescaling raised the mean test error from 0.2 to 0.3" in out
    assert "note: rescaled mixup" not in out


def test_report_reads_a_store_in_a_read_only_directory(tmp_path, capsys):
    store = _eps_store(tmp_path)
    os.chmod(store, 0o444)
    os.chmod(store.parent, 0o555)
    try:
        assert main(["report", str(store), "--by", "method"]) == 0
    finally:
        os.chmod(store.parent, 0o755)
        os.chmod(store, 0o644)
    assert "local_mixup" in capsys.readouterr().out


# --------------------------------------------------------------------------- reproduce --out


def test_reproduce_outside_a_checkout_requires_out(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", "alpha-calibration", "--quick"]) == 2
    assert "is not a vicinal checkout; give --out DIR" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing scattered into the working directory


def test_reproduce_defaults_to_the_checkouts_docs(monkeypatch):
    from vicinal.lab.cli import _checkout_docs

    monkeypatch.chdir(ROOT)
    assert _checkout_docs() == ROOT / "docs"
