"""Summary recipes (k-Mixup Table 1): the shipped numbers, validation, and the section read from result stores.

The stores are written here row by row with made-up test errors for exactly the runs a detail recipe makes,
so the best cells, their means and CIs and every claim's outcome are known by construction (computed by
hand below); one test trains a shrunken recipe through run_recipe to check that real stored runs are found.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from vicinal.lab.cli import main
from vicinal.lab.recipes import RECIPES_DIR, available_recipes, load_recipe, load_summary
from vicinal.lab.reproduce import Context, run_reproduction
from vicinal.lab.reproduce.base import store_path_of
from vicinal.lab.reproduce.recipe_run import record_alphas, run_recipe
from vicinal.lab.reproduce.recipe_summary import summarise
from vicinal.lab.store import ResultStore

from test_recipes import _write_cifar

SUMMARY = "kmixup-table1-summary"
# Test error per cell; seed s adds 0.001 * s to every cell, so every paired difference is the same on both
# seeds (95% CI half-width 0) and a comparison holds exactly when its mean difference is negative.
DENSENET = {"ERM": 0.040, "1-mixup alpha=0.5": 0.036, "1-mixup alpha=1.0": 0.033, "1-mixup alpha=2.0": 0.035,
            "1-mixup alpha=4.0": 0.037, "k-mixup k=16 alpha=0.5": 0.034, "k-mixup k=16 alpha=1.0": 0.031,
            "k-mixup k=16 alpha=2.0": 0.029, "k-mixup k=16 alpha=4.0": 0.030}
# CIFAR-100: the best k-mixup cell (k = 8) is above the best 1-mixup cell, and the best k = 16 cell is another one.
CIFAR100 = {"ERM": 0.200, "1-mixup alpha=0.5": 0.190, "1-mixup alpha=1.0": 0.195, "1-mixup alpha=2.0": 0.198,
            "1-mixup alpha=4.0": 0.199, "k-mixup k=8 alpha=0.5": 0.192, "k-mixup k=8 alpha=1.0": 0.196,
            "k-mixup k=8 alpha=2.0": 0.197, "k-mixup k=8 alpha=4.0": 0.199, "k-mixup k=16 alpha=0.5": 0.194,
            "k-mixup k=16 alpha=1.0": 0.193, "k-mixup k=16 alpha=2.0": 0.196, "k-mixup k=16 alpha=4.0": 0.198}


def _ci(base: float) -> str:
    """'mean ± half-width' in percent of the two seeds' values base and base + 0.001, from the t definition."""
    values = np.array([base, base + 0.001]) * 100
    half = scipy.stats.t.ppf(0.975, 1) * values.std(ddof=1) / np.sqrt(2)
    return f"{values.mean():.2f} ± {half:.2f}"


def _store(out: Path, name: str, errors: dict, *, root="/data/cifar", device="cpu", seeds=2, epochs=3, drop=0,
           finished="2026-01-01T00:00:00+00:00", record=True) -> int:
    """Store the runs ``vicinal reproduce name --data-dir root --seeds --epochs --device`` makes; return their count."""
    recipe = load_recipe(name)
    alphas = {(s["k"], s["alpha"]): round(s["alpha"] * (1 + s["k"] / 10), 6)  # made-up alpha_k, distinct per cell
              for row, _, s in recipe.cells() if row.calibrate_alpha}
    path = store_path_of(out, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    if record:
        record_alphas(path, root, alphas)
    runs = recipe.configs(root, seeds=seeds, epochs=epochs, device=device, alphas=alphas)
    with ResultStore(path) as store:
        for cell, seed, config in runs[drop:]:
            store.put(config, {"test_error": errors[cell] + 0.001 * seed}, wall_s=1.0, started_at=finished,
                      finished_at=finished)
    return len(runs)


def _line(text: str, name: str) -> list[str]:
    line = re.search(rf"^\| [^|]+ \| `{name}` \|(.*)\|$", text, flags=re.M)
    assert line, text
    return [c.strip() for c in line.group(1).split("|")]


def test_the_shipped_summary_carries_table_1_as_printed():
    summary = load_summary(SUMMARY)
    assert SUMMARY in available_recipes(summaries=True) and SUMMARY not in available_recipes()
    assert summary.tables == ("kmixup-table2-mnist", "kmixup-table10-cifar10", "kmixup-table11a-cifar10-densenet",
                              "kmixup-table11b-cifar10-wideresnet", "kmixup-table12a-cifar100", "kmixup-table12b-svhn",
                              "kmixup-table3-tiny-imagenet")
    printed = {  # Table 1, p. 9: (confidence, ERM, 1-mixup, k-mixup, 16-mixup)
        "kmixup-table2-mnist": (0.02, 0.95, 0.76, 0.66, 0.74), "kmixup-table10-cifar10": (0.03, 5.6, 4.18, 4.02, 4.02),
        "kmixup-table11a-cifar10-densenet": (0.03, 3.70, 3.29, 2.85, 2.85),
        "kmixup-table11b-cifar10-wideresnet": (0.09, 11.6, 11.53, 11.25, 11.25),
        "kmixup-table12a-cifar100": (0.05, 18.91, 18.91, 18.31, 18.31),  # "18.91" + footnote mark 6: 18.91
        "kmixup-table12b-svhn": (0.02, 3.37, 2.93, 2.78, 2.93),
        "kmixup-table3-tiny-imagenet": (0.06, 38.50, 37.58, 35.67, 35.67)}
    for table, numbers in printed.items():
        row = summary.paper[table]
        assert (row["confidence"], row["ERM"], row["1-mixup"], row["k-mixup"], row["16-mixup"]) == numbers, table
    assert "p. 9" in summary.source


def test_summary_validation_names_file_and_key(tmp_path):
    text = (RECIPES_DIR / f"{SUMMARY}.toml").read_text()
    for name in ("kmixup-table2-mnist", "kmixup-table10-cifar10", "local-table1-svhn"):
        (tmp_path / f"{name}.toml").write_text((RECIPES_DIR / f"{name}.toml").read_text())
    cases = {
        "titel = 'x'\n" + text: r"unknown key\(s\) 'titel' in the top level",
        text.replace('"kmixup-table2-mnist" = {', '"kmixup-table2-mnits" = {'):
            r"not in summary_of: \['kmixup-table2-mnits'\].*without a \[paper\] row: \['kmixup-table2-mnist'\]",
        text.replace('"16-mixup" = 0.74 }', '"16-mixpu" = 0.74 }'):
            r"unknown key\(s\) '16-mixpu' in \[paper.'kmixup-table2-mnist'\]",
        text.replace('"16-mixup" = 0.74', '"16-mixup" = "0.74"'):
            r"\[paper.'kmixup-table2-mnist'\].16-mixup must be a float",
        text.replace('summary_of = ["kmixup-table2-mnist",', 'summary_of = ["kmixup-table2-mnist", "local-table1-svhn",')
        .replace("[paper]", '[paper]\n"local-table1-svhn" = { setting = "SVHN", confidence = 0.1, ERM = 1.0, '
                            '"1-mixup" = 1.0, "k-mixup" = 1.0, "16-mixup" = 1.0 }'):
            r"column '1-mixup' takes '1-mixup' of 'local-table1-svhn': '1-mixup' names no row",
    }
    for i, (bad, message) in enumerate(cases.items()):
        (tmp_path / f"s{i}.toml").write_text(bad)
        with pytest.raises((ValueError, TypeError), match=rf"s{i}\.toml: .*{message}"):
            load_summary(f"s{i}", tmp_path)
    (tmp_path / "ok.toml").write_text(text)  # the recipes not in tmp_path (11a, 12a, ...) are accepted as missing
    assert load_summary("ok", tmp_path).tables[3] == "kmixup-table11b-cifar10-wideresnet"
    with pytest.raises(ValueError, match=r"ok\.toml is a summary recipe .*load_summary"):
        load_recipe("ok", tmp_path)
    with pytest.raises(ValueError, match=r"kmixup-table2-mnist\.toml is not a summary recipe .*load_recipe"):
        load_summary("kmixup-table2-mnist", tmp_path)


def test_summary_reads_the_best_cells_and_judges_each_table(tmp_path):
    out = tmp_path / "docs"
    # The DenseNet runs were made on another machine: another data root, on cuda. Still found.
    _store(out, "kmixup-table11a-cifar10-densenet", DENSENET, root="/elsewhere/cifar", device="cuda:1")
    _store(out, "kmixup-table12a-cifar100", CIFAR100)
    _store(out, "kmixup-table12b-svhn", {}, drop=10 ** 6)  # a store without these runs: missing
    section = summarise(Context(name=SUMMARY, quick=False, out=out), load_summary(SUMMARY), seeds=2, epochs=3)
    text = section.render(Context(name=SUMMARY, quick=False, out=out))
    assert _line(text, "kmixup-table11a-cifar10-densenet") == [
        _ci(0.040), "3.70", _ci(0.033) + " (alpha=1.0)", "3.29", _ci(0.029) + " (k=16 alpha=2.0)", "2.85",
        _ci(0.029) + " (k=16 alpha=2.0)", "2.85"]
    assert _ci(0.029) == "2.95 ± 0.64"  # the hand-computed value: mean 2.95 %, t(0.975, 1) x 0.0707 / sqrt 2
    assert _line(text, "kmixup-table12a-cifar100") == [
        _ci(0.200), "18.91", _ci(0.190) + " (alpha=0.5)", "18.91", _ci(0.192) + " (k=8 alpha=0.5)", "18.31",
        _ci(0.193) + " (k=16 alpha=1.0)", "18.31"]
    assert _line(text, "kmixup-table12b-svhn") == ["not stored", "3.37", "not stored", "2.93", "not stored", "2.78",
                                                   "not stored", "2.93"]
    # Paired differences, in percent points: 2.9 - 3.3 = -0.4 on both seeds.
    assert ("| `kmixup-table11a-cifar10-densenet` | best k-mixup (k-mixup k=16 alpha=2.0) < best 1-mixup "
            "(1-mixup alpha=1.0) | -0.40 ± 0.00 | holds |") in text
    assert ("| `kmixup-table12a-cifar100` | best k-mixup (k-mixup k=8 alpha=0.5) < best 1-mixup (1-mixup alpha=0.5) "
            "| +0.20 ± 0.00 | fails |") in text
    assert section.verdict == "not reproduced"
    assert section.reason.startswith("rests on 2 of 7 tables (kmixup-table11a-cifar10-densenet, "
                                     "kmixup-table12a-cifar100); not stored: kmixup-table2-mnist, ")
    for check, outcome in (("kmixup-table11a-cifar10-densenet: best k-mixup < best 1-mixup", "holds"),
                           ("kmixup-table11a-cifar10-densenet: best k-mixup < ERM", "holds"),
                           ("kmixup-table12a-cifar100: best k-mixup < best 1-mixup", "fails"),
                           ("kmixup-table12a-cifar100: best k-mixup < ERM", "holds"),
                           ("best 16-mixup < ERM in every table", "holds"),
                           # 16-mixup loses to 1-mixup on CIFAR-100 only: "all but one", as Table 1 says
                           ("best 16-mixup < best 1-mixup in all tables but at most one", "holds")):
        assert f"{check}: {outcome}" in section.reason
    assert "data root `/elsewhere/cifar`, device cuda:1" in text
    assert (f"- `kmixup-table12b-svhn`: 0 of 52 runs stored in {store_path_of(out, 'kmixup-table12b-svhn')}. Produce "
            f"them with `vicinal reproduce kmixup-table12b-svhn --data-dir DIR --seeds 2 --epochs 3`") in text
    assert ("- `kmixup-table11b-cifar10-wideresnet`: no result store at "
            f"{store_path_of(out, 'kmixup-table11b-cifar10-wideresnet')}") in text
    assert ("- `kmixup-table3-tiny-imagenet`: no result store at "
            f"{store_path_of(out, 'kmixup-table3-tiny-imagenet')}. Produce them with `vicinal reproduce "
            "kmixup-table3-tiny-imagenet --data-dir DIR --seeds 2 --epochs 3`") in text


def test_a_table_counts_only_with_every_run_of_the_requested_seeds_and_epochs(tmp_path):
    out, name = tmp_path / "docs", "kmixup-table11a-cifar10-densenet"
    ctx, summary = Context(name=SUMMARY, quick=False, out=out), load_summary(SUMMARY)
    assert summarise(ctx, summary, seeds=2, epochs=3).verdict == "not assessed (no stored runs)"
    total = _store(out, name, DENSENET, drop=1)  # one run short
    assert f"- `{name}`: {total - 1} of {total} runs stored" in summarise(ctx, summary, seeds=2, epochs=3).body
    _store(out, name, DENSENET, seeds=3)  # now complete, with a third seed: the first two are read
    section = summarise(ctx, summary, seeds=2, epochs=3)
    assert section.verdict == "reproduced" and _line(section.body, name)[0] == _ci(0.040)
    # Without --epochs the summary looks for the recipe's 200-epoch, 20-seed runs: none.
    assert f"- `{name}`: 0 of {9 * 20} runs stored" in summarise(ctx, summary).body
    with pytest.raises(ValueError, match="seeds=1 cannot decide"):
        summarise(ctx, summary, seeds=1)


def test_calibrated_rows_need_the_alpha_record_and_the_latest_complete_origin_wins(tmp_path):
    out, name = tmp_path / "docs", "kmixup-table11a-cifar10-densenet"
    ctx, summary = Context(name=SUMMARY, quick=False, out=out), load_summary(SUMMARY)
    _store(out, name, DENSENET, root="/a", record=False)
    body = summarise(ctx, summary, seeds=2, epochs=3).body
    assert f"- `{name}`: 0 of 18 runs stored" in body and "no alpha_k record for data root '/a'" in body
    _store(out, name, DENSENET, root="/a")  # rerunning the recipe writes the record
    _store(out, name, {cell: e + 0.05 for cell, e in DENSENET.items()}, root="/b", device="cuda",
           finished="2026-02-01T00:00:00+00:00")
    section = summarise(ctx, summary, seeds=2, epochs=3)
    assert _line(section.body, name)[0] == _ci(0.090)  # the later set (root /b)
    assert "data root `/b`, device cuda); 2 complete sets of runs" in section.body


def test_summary_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "docs"
    _store(out, "kmixup-table11a-cifar10-densenet", DENSENET)
    assert main(["reproduce", SUMMARY, "--seeds", "2", "--epochs", "3", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "**Verdict:** reproduced — rests on 1 of 7 tables (kmixup-table11a-cifar10-densenet)" in text
    assert (out / "reproductions" / f"{SUMMARY}.md").read_text() + "\n" == text
    assert f"| `{SUMMARY}` | reproduced |" in (out / "reproductions.md").read_text()
    assert main(["reproduce", SUMMARY, "--data-dir", str(tmp_path), "--out", str(out)]) != 0
    assert "trains nothing and reads the result stores" in capsys.readouterr().err
    with pytest.raises(ValueError, match="takes no --device, --quick"):
        run_reproduction(SUMMARY, out=out, device="cuda", quick=True)
    assert main(["list"]) == 0
    assert re.search(rf"^  {SUMMARY} +k-Mixup Table 1", capsys.readouterr().out, flags=re.M)


def test_runs_trained_by_run_recipe_are_found_by_the_summary(tmp_path):
    """Through the real path: Table 11(a) shrunk to ERM, 1-mixup and k = 16 at alpha 1 with LeNet (6 runs: 2 seeds,
    1 epoch of 80 images), trained by run_recipe, then a summary of it read from the store with its alpha_k record."""
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    text = (RECIPES_DIR / "kmixup-table11a-cifar10-densenet.toml").read_text()
    small = (text.replace("alpha = [0.5, 1.0, 2.0, 4.0]", "alpha = [1.0]").replace('model = "densenet_bc"', 'model = "lenet"')
             .replace("model_params = { depth = 190, growth_rate = 40 }", "model_params = {}")
             .replace("model_params = { depth = 10, growth_rate = 4 }", "model_params = {}")
             .replace("batch_size = 128", "batch_size = 32")
             .replace('metric = "test_error"\n', 'metric = "test_error"\nalpha_trials = 40\n'))
    small = re.sub(r'^"(1|k)-mixup [^\n]*alpha=(0\.5|2\.0|4\.0)" = [\d.]+\n', "", small, flags=re.M)
    (recipes / "tiny11a.toml").write_text(small)
    (recipes / "tiny-summary.toml").write_text(
        'title = "t"\nsource = "s"\nsummary_of = ["tiny11a"]\n[paper]\n"tiny11a" = { setting = "CIFAR-10, LeNet", '
        'confidence = 0.03, ERM = 3.70, "1-mixup" = 3.29, "k-mixup" = 2.85, "16-mixup" = 2.85 }\n')
    root = _write_cifar(tmp_path / "cifar", np.random.default_rng(0), "cifar10", n=16)
    out = tmp_path / "docs"
    run_recipe(Context(name="tiny11a", quick=False, out=out), load_recipe("tiny11a", recipes), root, seeds=2, epochs=1)
    ctx = Context(name="tiny-summary", quick=False, out=out)
    section = summarise(ctx, load_summary("tiny-summary", recipes), seeds=2, epochs=1, directory=recipes)
    assert section.reason.startswith("rests on 1 of 1 tables (tiny11a)"), section.body
    assert f"6 runs (data root `{root.resolve()}`, device cpu)" in section.body


def test_an_included_recipe_missing_from_the_recipes_folder_is_named_with_a_hint(tmp_path):
    """A summary whose folder lacks one included recipe (a copy of recipes/ kept short) names it, not crashes."""
    folder = tmp_path / "recipes"
    folder.mkdir()
    for name in available_recipes():
        if name != "kmixup-table11b-cifar10-wideresnet":
            (folder / f"{name}.toml").write_text((RECIPES_DIR / f"{name}.toml").read_text())
    (folder / f"{SUMMARY}.toml").write_text((RECIPES_DIR / f"{SUMMARY}.toml").read_text())
    ctx = Context(name=SUMMARY, quick=False, out=tmp_path / "docs")
    section = summarise(ctx, load_summary(SUMMARY, folder), seeds=2, epochs=3, directory=folder)
    assert ("- `kmixup-table11b-cifar10-wideresnet`: no recipes/kmixup-table11b-cifar10-wideresnet.toml in this "
            "checkout yet") in section.body
    assert section.verdict == "not assessed (no stored runs)"
