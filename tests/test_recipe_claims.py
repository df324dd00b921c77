"""Recipe columns and claims: selections, ``columns``, ``better_column`` / ``worse_column`` and ``each``, checked
against comparisons written out by hand on made-up per-seed values (no training)."""

from __future__ import annotations

import numpy as np
import pytest

from vicinal.lab.recipes import load_recipe
from vicinal.lab.reproduce.base import paired_below
from vicinal.lab.reproduce.recipe_run import claim_checks, claim_name

RECIPE = '''
title = "t"
source = "s"
dataset = "mnist"
seeds = 3
{metric}

[run]
model = "lenet"
epochs = 2
noise_stds = [0.1, 0.2]

[[rows]]
label = "ERM"
method = "erm"

[[rows]]
label = "1-mixup"
method = "mixup"
grid = {{ alpha = [1.0, 2.0] }}

[[rows]]
label = "k-mixup"
method = "kmixup"
grid = {{ k = [4, 16], alpha = [1.0, 2.0] }}

[paper]
{paper}

{claims}
'''
COLUMNS = '[columns]\n"low" = "noise_error@0.1"\n"high" = { metric = "noise_error@0.2", percent = false }'


def _write(tmp_path, name="r", *, metric=COLUMNS, paper="", claims='[[claims]]\nmain = true\nbetter = "k-mixup"\n'
           'worse = "1-mixup"'):
    (tmp_path / f"{name}.toml").write_text(RECIPE.format(metric=metric, paper=paper, claims=claims))
    return load_recipe(name, tmp_path)


def test_paper_keys_name_a_column_and_every_key_is_checked(tmp_path):
    recipe = _write(tmp_path, paper='"k-mixup k=4 alpha=2.0 | high" = 3.5')
    assert [c.label for c in recipe.table_columns()] == ["low", "high"]
    assert recipe.table_columns()[1].percent is False
    assert recipe.paper_value("k-mixup k=4 alpha=2.0", recipe.columns[1]) == 3.5
    assert recipe.paper_value("k-mixup k=4 alpha=2.0", recipe.columns[0]) is None
    with pytest.raises(ValueError, match=r"\[paper\] names cell\(s\) \['k-mixup k=4 alpha=2.0 \| medium'\]"):
        _write(tmp_path, "bad", paper='"k-mixup k=4 alpha=2.0 | medium" = 3.5')
    with pytest.raises(ValueError, match="either 'metric'"):
        _write(tmp_path, "both", metric='metric = "test_error"\n' + COLUMNS)


def test_selections_narrow_a_row_by_axis_values(tmp_path):
    recipe = _write(tmp_path)
    assert [name for name, _ in recipe.select("k-mixup k=16")] == ["k-mixup k=16 alpha=1.0", "k-mixup k=16 alpha=2.0"]
    assert recipe.select("k-mixup k=16 alpha=2.0") == [("k-mixup k=16 alpha=2.0", {"k": 16, "alpha": 2.0})]
    assert recipe.select("ERM") == [("ERM", {})]
    with pytest.raises(ValueError, match="'k-mixup k=8' selects no cell"):
        recipe.select("k-mixup k=8")
    with pytest.raises(ValueError, match="'kk=4' is no axis=value of row 'k-mixup'"):
        recipe.select("k-mixup kk=4")
    with pytest.raises(ValueError, match="'2-mixup' names no row"):
        recipe.select("2-mixup")


@pytest.mark.parametrize("claims, message", [
    ('[[claims]]\nmain = true\nbetter = "k-mixup k=8"\nworse = "ERM"', r"\[\[claims\]\] #1\.better: 'k-mixup k=8' selects"),
    ('[[claims]]\nmain = true\nbetter = "k-mixup"\nworse = "ERM"\ncolumns = ["lo"]', r"columns names 'lo', no column"),
    ('[[claims]]\nmain = true\nbetter = "k-mixup"\nworse = "ERM"\neach = ["k", "eps"]', r"each must list grid axes"),
    ('[[claims]]\nmain = true\nbetter = "k-mixup"\nworse = "ERM"\ncolumns = "all"\nbetter_column = "low"',
     "use one or the other"),
    ('[[claims]]\nbetter = "k-mixup"\nworse = "ERM"', "mark the main claim"),
])
def test_bad_claims_are_refused_naming_the_key(tmp_path, claims, message):
    with pytest.raises(ValueError, match=message):
        _write(tmp_path, claims=claims)


def _values(recipe, rng):
    """Made-up per-seed values of every cell at every column (3 seeds)."""
    return {c.label: {name: list(rng.uniform(0.1, 0.9, 3)) for _, name, _ in recipe.cells()}
            for c in recipe.table_columns()}


def _best(values, names):
    return min(names, key=lambda n: np.mean(values[n]))


def test_each_and_columns_make_every_comparison_the_claim_states(tmp_path):
    recipe = _write(tmp_path, claims='[[claims]]\nmain = true\nbetter = "k-mixup k=16"\nworse = "1-mixup"\n'
                                     'columns = "all"\neach = ["alpha"]\n\n[[claims]]\nbetter = "k-mixup k=16"\n'
                                     'worse = "ERM"\neach = ["alpha"]')
    rng = np.random.default_rng(0)
    for _ in range(20):
        values = _values(recipe, rng)
        # By hand: at each column and alpha, k = 16 at that alpha against 1-mixup at that alpha.
        expected = [(column, f"k-mixup k=16 alpha={a}", f"1-mixup alpha={a}") for column in ("low", "high")
                    for a in (1.0, 2.0)]
        found = claim_checks(recipe, recipe.claims[0], values)
        assert [(c["columns"][0], c["better"], c["worse"]) for c in found] == expected
        assert [c["holds"] for c in found] == [paired_below(values[col][b], values[col][w]) for col, b, w in expected]
        # ERM has no alpha axis: each alpha of k = 16 against the one ERM cell, at the first column only.
        against_erm = claim_checks(recipe, recipe.claims[1], values)
        assert [(c["columns"], c["better"], c["worse"]) for c in against_erm] == [
            (("low", "low"), f"k-mixup k=16 alpha={a}", "ERM") for a in (1.0, 2.0)]


def test_best_cells_are_chosen_per_side_and_per_column(tmp_path):
    recipe = _write(tmp_path, claims='[[claims]]\nmain = true\nbetter = "k-mixup"\nworse = "k-mixup"\n'
                                     'better_column = "high"\nworse_column = "low"')
    rng = np.random.default_rng(1)
    values = _values(recipe, rng)
    names = [name for name, _ in recipe.select("k-mixup")]
    (found,) = claim_checks(recipe, recipe.claims[0], values)
    b, w = _best(values["high"], names), _best(values["low"], names)
    assert (found["better"], found["worse"]) == (b, w)
    difference = np.array(values["high"][b]) - np.array(values["low"][w])
    assert found["difference"][0] == pytest.approx(difference.mean())
    assert found["holds"] == paired_below(values["high"][b], values["low"][w])
    assert claim_name(recipe.claims[0]) == "best k-mixup < best k-mixup (high against low)"
    # A claim the values make true by construction holds; its mirror image fails.
    values["high"] = {n: [v - 1.0 for v in values["low"][n]] for n in names} | {
        n: values["high"][n] for n in values["high"] if n not in names}
    assert claim_checks(recipe, recipe.claims[0], values)[0]["holds"]


def test_shipped_single_column_recipes_keep_their_claim_wording():
    recipe = load_recipe("local-table1-svhn")
    assert recipe.table_columns()[0].metric == "test_error" and not recipe.named_columns
    assert claim_name(recipe.claims[0]) == "best Local Mixup < best Mixup"


def test_the_configuration_line_says_which_rows_stayed_on_the_cpu():
    from vicinal.lab.reproduce.recipe_run import _devices

    fig7 = load_recipe("carratino-fig7-cifar10-lenet")
    assert _devices(fig7, "cuda") == "device cuda (rows on the host loop, CPU: approximate Mixup)"
    assert _devices(fig7, None) == "device cpu"
    assert _devices(load_recipe("kmixup-table10-cifar10"), "cuda") == "device cuda"


def test_not_above_holds_unless_the_difference_is_significantly_positive(tmp_path):
    """'Outperforms or statistically matches': by hand, the paired CI of better - worse must not lie above 0."""
    recipe = _write(tmp_path, claims='[[claims]]\nmain = true\nbetter = "k-mixup k=4 alpha=1.0"\nworse = "ERM"\n'
                                     'relation = "not_above"')
    values = _values(recipe, np.random.default_rng(3))
    erm = values["low"]["ERM"]
    for shift, expected in (([0.1, 0.1, 0.1], False),       # significantly above: fails
                            ([0.2, -0.1, 0.0], True),        # no significant difference: holds
                            ([-0.1, -0.1, -0.1], True)):     # below: holds
        values["low"]["k-mixup k=4 alpha=1.0"] = [e + d for e, d in zip(erm, shift)]
        (found,) = claim_checks(recipe, recipe.claims[0], values)
        assert found["holds"] is expected
        assert found["holds"] is (not paired_below(erm, values["low"]["k-mixup k=4 alpha=1.0"]))
    assert claim_name(recipe.claims[0]).startswith("best k-mixup k=4 alpha=1.0 not above")
    with pytest.raises(ValueError, match=r"relation must be one of 'below', 'not_above'"):
        _write(tmp_path, "bad", claims='[[claims]]\nmain = true\nbetter = "k-mixup"\nworse = "ERM"\nrelation = "above"')


def test_epochs_override_scales_milestones_without_decaying_before_the_first_step():
    """--epochs 1 of a 200-epoch recipe (milestones 100, 150) trains at the recipe's lr: MultiStepLR applies a
    milestone 0 before the first step, which would train the whole run at lr / 100."""
    import torch

    from vicinal.lab.config import RunConfig, make_optimizer, make_schedule

    recipe = load_recipe("kmixup-table7b-mnist-fgsm")
    assert recipe.run["milestones"] == [100, 150] and recipe.run["epochs"] == 200
    for epochs, expected in ((1, []), (2, [1, 1]), (4, [2, 3]), (200, [100, 150])):
        for _, _, values in recipe.configs("/data", seeds=1, epochs=epochs):
            assert values["milestones"] == expected, (epochs, values["milestones"])
    _, _, values = recipe.configs("/data", seeds=1, epochs=1)[0]
    config = RunConfig.from_dict(values)
    optimizer = make_optimizer([torch.nn.Parameter(torch.zeros(1))], config)
    make_schedule(optimizer, config)
    assert optimizer.param_groups[0]["lr"] == recipe.run["lr"]  # the lr of the one epoch


def test_a_seed_count_below_one_is_refused_and_a_one_seed_recipe_names_its_count(tmp_path):
    from vicinal.lab.recipes import RECIPES_DIR
    from vicinal.lab.reproduce import Context
    from vicinal.lab.reproduce.recipe_run import run_recipe

    text = (RECIPES_DIR / "local-table1-svhn.toml").read_text()
    assert "seeds = 1\n" in text.split("[quick]")[1]
    for name, key, changed in (("zero", "seeds", text.replace("seeds = 10", "seeds = 0", 1)),
                               ("quick_zero", r"\[quick\]\.seeds", text.replace("[quick]\nseeds = 1", "[quick]\nseeds = 0"))):
        assert changed != text
        (tmp_path / f"{name}.toml").write_text(changed)
        with pytest.raises(ValueError, match=rf"{name}\.toml: {key} must be at least 1 \(trials per cell\), got 0"):
            load_recipe(name, tmp_path)
    (tmp_path / "one.toml").write_text(text.replace("seeds = 10", "seeds = 1", 1))
    with pytest.raises(ValueError, match="seeds=1 cannot decide its claims"):  # not "seeds=None"
        run_recipe(Context(name="one", quick=False, out=tmp_path / "docs"), load_recipe("one", tmp_path), tmp_path)


@pytest.mark.parametrize("old, new, where", [
    ('\neval_corrupted = "{data_dir}"', '\neval_corrupted = "{data_dr}"', r"\[run\]\.eval_corrupted"),
    ('\neval_corrupted = "{data_dir}"', '\neval_corrupted = "{data_dir}/{corruption}"', r"\[run\]\.eval_corrupted"),
    ('grid = { alpha = [0.1', 'settings = { eval_corrupted = "{data_dir}" }\ngrid = { alpha = [0.1',
     r"\[\[rows\]\] #2\.settings\.eval_corrupted"),
])
def test_a_placeholder_that_would_not_be_replaced_is_refused_by_file_and_key(tmp_path, old, new, where):
    """Only [run] strings get {data_dir}; anything else would reach the run as a literal path."""
    from vicinal.lab.recipes import RECIPES_DIR

    text = (RECIPES_DIR / "carratino-fig4-6-cifar10-resnet34.toml").read_text()
    assert old in text
    (tmp_path / "bad.toml").write_text(text.replace(old, new, 1))
    with pytest.raises(ValueError, match=rf"bad\.toml: {where} = .* holds '\{{[a-z_]+\}}'; the one placeholder"):
        load_recipe("bad", tmp_path)
    quick = text.replace("run = { epochs = 1,", 'run = { eval_corrupted = "{data_dir}/C", epochs = 1,')
    assert quick != text
    (tmp_path / "quick.toml").write_text(quick)  # [quick].run is merged into [run]: it gets {data_dir} too
    assert load_recipe("quick", tmp_path).quick_version().configs("/d", seeds=1)[0][2]["eval_corrupted"] == "/d/C"


def test_a_claim_comparing_a_selection_with_itself_at_one_column_is_refused(tmp_path):
    from vicinal.lab.recipes import RECIPES_DIR

    text = (RECIPES_DIR / "carratino-fig7-cifar10-lenet.toml").read_text()
    old = 'better = "Mixup"\nworse = "ERM + label smoothing"'
    assert old in text
    (tmp_path / "bad.toml").write_text(text.replace(old, 'better = "Mixup"\nworse = "Mixup"'))
    with pytest.raises(ValueError, match=r"bad\.toml: \[\[claims\]\] #1 compares 'Mixup' with itself at column "
                                         r"'mean confidence'"):
        load_recipe("bad", tmp_path)
