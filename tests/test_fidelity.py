"""Issue 16: the verdict rubric, the authors' spirals recipe as options, One Ring from xi, the margin attack.

Ground truths are written from the definitions here (Student-t intervals from scipy, the loss of the
authors' notebook from its formula, exact enumeration of pairs, a linear model's margin gradient).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

import vicinal as v
from vicinal.lab.compare import takeaway
from vicinal.lab.config import RunConfig
from vicinal.lab.datasets import load_dataset
from vicinal.lab.ensemble import fit_batched
from vicinal.lab.evaluate import margin_fgsm_error
from vicinal.lab.models import build_model
from vicinal.lab.reproduce import run_reproduction
from vicinal.lab.reproduce.base import RUBRIC, VERDICTS, judge, paired_below, paired_equal
from vicinal.lab.reproduce.kmixup_toys import _column_checks, one_ring_params
from vicinal.lab.reproduce.spirals_eps import DEVIATIONS, recipe_settings
from vicinal.lab.trainer import _Step, train


# ----------------------------------------------------------------------------------------- rubric


def test_judge_applies_each_rule_of_the_rubric():
    assert judge({"a": True}, {"b": True})[0] == "reproduced"
    verdict, reason = judge({"a": True}, {"b": False, "c": True})
    assert verdict == "partly reproduced" and "b: fails" in reason and "c: holds" in reason
    assert judge({"a": False}, {"b": True})[0] == "not reproduced"
    assert judge({"a": False}, authors={"a": True})[0] == "reproduced with the authors' recipe only"
    assert judge({"a": False}, authors={"a": False})[0] == "not reproduced"
    assert judge(None, authors={"a": True})[0] == "reproduced with the authors' recipe only"
    assert "reproduced with the authors' recipe only" in VERDICTS and "informative" in RUBRIC
    with pytest.raises(ValueError, match="main"):
        judge(None)
    with pytest.raises(ValueError, match="at least one check"):
        judge({})


def test_paired_tests_match_student_t_from_scipy():
    rng = np.random.default_rng(0)
    for _ in range(50):
        a, b = rng.normal(size=8), rng.normal(size=8) + rng.uniform(-1.5, 1.5)
        d = a - b
        half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
        assert paired_below(a, b) == (d.mean() + half < 0)
        assert paired_equal(a, b) == (abs(d.mean()) <= half)
    with pytest.raises(ValueError, match="equal 1-D shapes"):
        paired_below([1.0, 2.0], [1.0])


def test_only_informative_columns_count_for_the_best_k():
    errors = np.zeros((3, 3, 2))  # (seeds, k, alpha): column 0 is 0.00 for every k
    errors[:, 0, 1], errors[:, 1, 1], errors[:, 2, 1] = [0.10, 0.12, 0.11], [0.05, 0.06, 0.05], [0.01, 0.02, 0.01]
    checks = _column_checks(errors)
    assert checks["informative"] == 1 and checks["best"] == 1 and checks["comparable"] == 1
    assert checks["clearly"] == 1


# ----------------------------------------------------------------------------------------- spirals recipes


def test_recipes_switch_exactly_the_four_deviations():
    authors, corrected = recipe_settings(set(DEVIATIONS)), recipe_settings(set())
    assert authors == {"dataset_params": {"noise_model": "uniform_offset"},
                       "model_params": {"widths": [100, 100, 100], "output_softmax": True},
                       "reduction": "mean_times_mean_weight"}
    assert corrected == {"dataset_params": {"noise_model": "gaussian"},
                         "model_params": {"widths": [100, 100], "output_softmax": False}, "reduction": "mean"}
    with pytest.raises(ValueError, match="unknown deviation"):
        recipe_settings({"dropout"})


def test_uniform_offset_spirals_mirror_class_zero():
    data = load_dataset("spirals", seed=3, n_per_class=60, noise=0.5, noise_model="uniform_offset")
    x = torch.cat([data.x_train, data.x_test]).double()
    y = torch.cat([data.y_train, data.y_test])
    x0, x1 = x[y == 0], x[y == 1]
    # Standardisation is affine: class 1 = -class 0 in raw space means x1 = c - x0 for one vector c.
    c = x0.mean(0) + x1.mean(0)
    assert torch.cdist(x1, c - x0).min(1).values.max() < 1e-5
    gaussian = load_dataset("spirals", seed=3, n_per_class=60, noise=0.5)
    g = torch.cat([gaussian.x_train, gaussian.x_test]).double()
    gy = torch.cat([gaussian.y_train, gaussian.y_test])
    assert torch.cdist(g[gy == 1], g[gy == 0].mean(0) + g[gy == 1].mean(0) - g[gy == 0]).min(1).values.max() > 1e-2
    with pytest.raises(ValueError, match="noise_model must be"):
        load_dataset("spirals", seed=0, noise_model="laplace")


def test_output_softmax_model_ends_in_probabilities():
    model = build_model("mlp", input_shape=(2,), num_outputs=2, seed=0, widths=[5], output_softmax=True)
    out = model(torch.randn(7, 2))
    assert torch.allclose(out.sum(1), torch.ones(7)) and (out >= 0).all()
    with pytest.raises(TypeError, match="output_softmax"):
        build_model("mlp", input_shape=(2,), num_outputs=2, seed=0, output_softmax="yes")


AUTHORS = dict(dataset="spirals", dataset_params={"n_per_class": 60, "noise": 0.5, "noise_model": "uniform_offset"},
               model="mlp", model_params={"widths": [8, 8, 8], "output_softmax": True}, optimizer="adam", lr=0.01,
               epochs=2, data_seed=0, method="local_mixup", graph="threshold", eps=0.8, batch_size=16,
               reduction="mean_times_mean_weight", eval_rescaled=False)


def test_authors_loss_is_mean_ce_times_mean_weight():
    config = RunConfig.from_dict(dict(AUTHORS, seed=1))
    data = load_dataset("spirals", seed=0, **AUTHORS["dataset_params"])
    model = build_model("mlp", input_shape=(2,), num_outputs=2, seed=0, **AUTHORS["model_params"])
    x, y = data.x_train[:16], data.y_train[:16]
    loss = _Step(config, model, data, None)(x, y, torch.Generator().manual_seed(5))
    # The same draws by hand: the mixer's batch, then the notebook's formula.
    batch = v.LocalMixup(alpha=1.0, graph=v.Threshold(eps=0.8), num_classes=2)(x, y, generator=torch.Generator().manual_seed(5))
    probabilities = model(batch.inputs)
    ce = -(batch.targets * torch.log_softmax(probabilities, 1)).sum(1)  # CE on probabilities: the double softmax
    assert 0 < float(batch.weights.mean()) < 1  # some pairs dropped, so the two reductions differ
    assert torch.allclose(loss, ce.mean() * batch.weights.mean())
    assert not torch.allclose(loss, (ce * batch.weights).mean())


def test_authors_recipe_batched_equals_single_runs():
    single = train(dict(AUTHORS, seed=2))
    fitted = fit_batched([dict(AUTHORS, seed=s) for s in range(3)] + [dict(AUTHORS, seed=2, method="erm")])
    assert np.allclose(single["train_loss"], fitted[2][1]["train_loss"], rtol=1e-5)
    assert single["test_error"] == fitted[2][1]["test_error"]
    erm = train(dict(AUTHORS, seed=2, method="erm"))
    assert np.allclose(erm["train_loss"], fitted[3][1]["train_loss"], rtol=1e-5)


def test_recipe_option_is_refused_where_there_is_none(tmp_path):
    with pytest.raises(ValueError, match="--recipe applies to spirals-eps only"):
        run_reproduction("lipschitz", quick=True, out=tmp_path, recipe="authors")
    with pytest.raises(ValueError, match="recipe must be"):
        run_reproduction("spirals-eps", quick=True, out=tmp_path, recipe="paper")


# ----------------------------------------------------------------------------------------- One Ring


def test_one_ring_geometry_gives_table9_xi_at_alpha_one():
    params = one_ring_params()
    assert params["core_radius"] == 0.33
    x = load_dataset("one_ring", seed=0, n_per_class=400, **params).x_train.double()
    mean_square = torch.cdist(x, x).pow(2).sum() / (len(x) * (len(x) - 1))  # every ordered pair i != j
    xi = math.sqrt(float(mean_square) / 12)  # E[min(lam, 1 - lam)^2] = 1/12 for lam ~ U(0, 1)
    assert abs(xi - 0.15) < 0.006
    with pytest.raises(ValueError, match="too small"):
        one_ring_params(core_radius=0.33, xi=0.05)


# ----------------------------------------------------------------------------------------- attacks


def test_margin_attack_matches_the_linear_model_by_hand():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3, bias=False)
    x, y = torch.randn(50, 4), torch.randint(0, 3, (50,))
    eps = 0.3
    w = model.weight.detach()
    expected = 0
    for xi, yi in zip(x, y):
        logits = w @ xi
        other = max((j for j in range(3) if j != yi), key=lambda j: float(logits[j]))
        moved = xi + eps * torch.sign(w[other] - w[yi])  # gradient of z_other - z_true for a linear model
        expected += int(int((w @ moved).argmax()) != int(yi))
    assert margin_fgsm_error(model, x, y, eps=eps) == expected / 50


# ----------------------------------------------------------------------------------------- demo line


def _rows(errors: dict[str, list[float]]) -> list[dict]:
    return [dict(config={"method": m, "seed": s}, metrics={"test_error": e / 100})
            for m, values in errors.items() for s, e in enumerate(values)]


def test_takeaway_says_only_what_paired_cis_show():
    errors = {"erm": [1.0, 1.2, 0.9, 1.1], "mixup": [30.0, 31.0, 29.0, 32.0],
              "local_mixup": [8.0, 9.0, 7.5, 8.5], "kmixup": [5.0, 6.0, 5.5, 4.5]}
    line = takeaway(_rows(errors), "spirals")
    assert "Lowest mean test error: erm" in line and "manifold intrusion" in line
    assert "(76 % of it with local_mixup and 86 % of it with kmixup)" in line and "plain training wins" in line
    tied = {"erm": [5.0, 6.0, 4.0, 5.0], "mixup": [5.5, 4.5, 5.0, 6.0]}
    line = takeaway(_rows(tied), "spirals")
    assert "not separable from mixup" in line and "worse than plain training" not in line
    assert takeaway(_rows({"erm": [1.0], "mixup": [2.0]}), "spirals") == ""


def test_index_summarises_each_verdict_and_appends_the_closing_note(tmp_path):
    from vicinal.lab.reproduce.base import Context, Section, assemble

    ctx = Context(name="a", quick=False, out=tmp_path)
    for name, verdict in (("a", "reproduced"), ("b", "not reproduced")):
        section = Section(title=name, claim="c", verdict=verdict, reason="r", body="b", compute_seconds=12.4)
        ctx.sections_dir.mkdir(parents=True, exist_ok=True)
        (ctx.sections_dir / f"{name}.md").write_text(section.render(Context(name=name, quick=False, out=tmp_path)))
    (ctx.sections_dir / "closing-note.md").write_text("## Closing note\n\nbefore / after\n")
    index = assemble(ctx, {"a": None, "b": None, "c": None}).read_text()
    assert "| `a` | reproduced | 12 |" in index and "| `b` | not reproduced | 12 |" in index
    assert index.index("## Summary") < index.index("## Not yet run") < index.index("## Closing note")
    assert RUBRIC in index
