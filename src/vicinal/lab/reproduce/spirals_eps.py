"""``spirals-eps``: Local Mixup Fig. 3 (Baena et al. 2022, Sec. V-A), test error vs eps on two spirals.

Two recipes, as data (:data:`DEVIATIONS`): ``authors`` follows the authors' notebook (see
``shared/notes/reference-implementations.md``), ``corrected`` follows the paper's text and eq. 2.
They differ in four switches; the ablation turns each one on alone in the corrected recipe and off
alone in the authors' one. Both use Adam lr 0.01, one lambda ~ Beta(1, 1) per batch, a thresholded
graph on standardised inputs and the notebook's batch size per eps (grown as eps shrinks so that
about the same number of pairs is kept per step). eps = 0 is plain training (ERM, batch 20).
"""

from __future__ import annotations

import numpy as np

from ..config import RunConfig
from .base import Context, Section, judge, markdown_table, paired_ci, paired_below, fmt_ci
from .runs import sweep_metrics

#: eps -> batch size, as in the authors' notebook (eps = 0 is ERM at batch 20).
PAPER_BATCH_SIZES = {0.6: 241, 1.0: 103, 1.5: 50, 2.0: 33, 2.5: 25, 3.0: 22, 3.5: 20, 4.0: 20, 10.0: 20}
#: eps = 10 keeps every pair of the standardised spirals: eq. 2's Mixup through the same code path.
MIXUP_EPS = 10.0

#: name -> (what the authors' notebook does, what the paper / eq. 2 says, settings on, settings off).
DEVIATIONS: dict[str, tuple[str, str, dict, dict]] = {
    "data": ("Uniform[0, 0.5) offsets, class 1 = -class 0", "Gaussian noise 0.5",
             {"dataset_params": {"noise_model": "uniform_offset"}}, {"dataset_params": {"noise_model": "gaussian"}}),
    "depth": ("three hidden layers (Net(100))", "two hidden layers (Sec. V-A)",
              {"model_params": {"widths": [100, 100, 100]}}, {"model_params": {"widths": [100, 100]}}),
    "double softmax": ("softmax in the model, then CrossEntropyLoss", "cross-entropy on logits",
                       {"model_params": {"output_softmax": True}}, {"model_params": {"output_softmax": False}}),
    "loss": ("mean CE x mean pair weight", "per-pair weights of eq. 2 (mean over the batch)",
             {"reduction": "mean_times_mean_weight"}, {"reduction": "mean"}),
}
RECIPES = ("authors", "corrected")


def recipe_settings(switched_on: set[str]) -> dict:
    """Run settings with the named :data:`DEVIATIONS` switched on (the authors') and the others off.

    Baena et al. 2022, Sec. V-A and eq. 2 (all off) against the authors' spirals notebook (all on).
    """
    unknown = set(switched_on) - set(DEVIATIONS)
    if unknown:
        raise ValueError(f"unknown deviation(s) {sorted(unknown)}; valid: {sorted(DEVIATIONS)}")
    settings: dict = {"dataset_params": {}, "model_params": {}}
    for name, (_, _, on, off) in DEVIATIONS.items():
        for key, value in (on if name in switched_on else off).items():
            if isinstance(value, dict):
                settings[key].update(value)
            else:
                settings[key] = value
    return settings


def _variants(recipes: tuple[str, ...]) -> dict[str, set[str]]:
    """Label -> deviations on: the chosen recipes, and (both recipes) each deviation switched alone."""
    variants = {"authors": set(DEVIATIONS), "corrected": set()}
    variants = {name: variants[name] for name in recipes}
    if len(recipes) == 2:
        for name in DEVIATIONS:
            variants[f"authors without {name}"] = set(DEVIATIONS) - {name}
            variants[f"corrected with {name}"] = {name}
    return variants


def _configs(ctx: Context, recipes: tuple[str, ...]) -> tuple[list[tuple[str, str, dict]], dict]:
    """(variant, point, config) triples; a point is "erm" or an eps. Full curves for the recipes themselves."""
    if ctx.quick:
        plan = dict(seeds=2, epochs=3, n_per_class=150, eps_values=[0.6, MIXUP_EPS], ablation_eps=[0.6, MIXUP_EPS])
    else:
        # The notebook's 200 epochs; 20 seeds (paper: 1000) and a subset of its eps grid (2.5, 3.5 and 4 left
        # out: batches of 20-25 cost the most) to fit ~10 minutes on 2 cores.
        plan = dict(seeds=20, epochs=200, n_per_class=1000, eps_values=[0.6, 1.0, 1.5, 2.0, 3.0, MIXUP_EPS],
                    ablation_eps=[0.6, MIXUP_EPS])
    out = []
    for variant, on in _variants(recipes).items():
        settings = recipe_settings(on)
        base = dict(dataset="spirals", dataset_params={"n_per_class": plan["n_per_class"], "noise": 0.5,
                                                       **settings["dataset_params"]},
                    model="mlp", model_params=settings["model_params"], optimizer="adam", lr=0.01,
                    schedule="step", step_size=300, gamma=0.1, epochs=plan["epochs"], alpha=1.0,
                    eval_rescaled=False, data_seed=0)
        eps_values = plan["eps_values"] if variant in RECIPES else plan["ablation_eps"]
        for seed in range(plan["seeds"]):
            out.append((variant, "erm", dict(base, method="erm", batch_size=20, seed=seed)))
            if variant in RECIPES and not ctx.quick:  # every pair kept at eps 0.6's batch: is eps a batch size?
                out.append((variant, "mixup241", dict(base, method="local_mixup", graph="threshold", eps=MIXUP_EPS,
                                                      reduction=settings["reduction"], batch_size=241, seed=seed)))
            for eps in eps_values:
                out.append((variant, eps, dict(base, method="local_mixup", graph="threshold", eps=eps,
                                               reduction=settings["reduction"], batch_size=PAPER_BATCH_SIZES[eps],
                                               seed=seed)))
    return [(v, p, RunConfig.from_dict(c).to_dict()) for v, p, c in out], plan


def _errors(ctx: Context, triples) -> dict[str, dict]:
    """Train (or reuse) every run as batched ensembles; variant -> point -> test errors (%) in seed order."""
    metrics = sweep_metrics(ctx, [c for _, _, c in triples])
    errors: dict[str, dict] = {}
    for (variant, point, _), m in zip(triples, metrics):
        errors.setdefault(variant, {}).setdefault(point, []).append(100 * m["test_error"])
    return {v: {p: np.array(e) for p, e in points.items()} for v, points in errors.items()}


def fig3_order(points: dict, local_eps: float) -> dict[str, bool]:
    """Baena et al. 2022, Fig. 3's order Local < Mixup < ERM at one eps, each inequality by a paired 95% CI."""
    local, mixup, erm = points[local_eps], points[MIXUP_EPS], points["erm"]
    return {f"Local Mixup (eps {local_eps:g}) below Mixup": paired_below(local, mixup),
            f"Local Mixup (eps {local_eps:g}) below ERM": paired_below(local, erm),
            "Mixup below ERM": paired_below(mixup, erm)}


def _best_eps(points: dict) -> float:
    candidates = [p for p in points if p not in ("erm", "mixup241", MIXUP_EPS)]
    return min(candidates, key=lambda eps: points[eps].mean())


def _curve_table(errors: dict, recipes: tuple[str, ...], eps_values) -> str:
    rows = [["ERM (eps = 0)", 20] + [fmt_ci(errors[r]["erm"]) for r in recipes]]
    rows += [[f"Local Mixup eps = {eps:g}" + (" (every pair: Mixup)" if eps == MIXUP_EPS else ""),
              PAPER_BATCH_SIZES[eps]] + [fmt_ci(errors[r][eps]) for r in recipes] for eps in eps_values]
    return markdown_table(["method", "batch size"] + [f"{r} recipe, test error %" for r in recipes], rows)


def _ablation_table(errors: dict) -> str:
    rows = []
    for variant, points in errors.items():
        order = fig3_order(points, 0.6)
        holds = all(order.values())
        diff = paired_ci(points[0.6], points["erm"])
        rows.append([variant, fmt_ci(points["erm"]), fmt_ci(points[MIXUP_EPS]), fmt_ci(points[0.6]),
                     f"{diff[0]:+.2f} ± {diff[1]:.2f}", "yes" if holds else "no"])
    return markdown_table(["recipe", "ERM", "Mixup (eps 10)", "Local eps 0.6 (batch 241)",
                           "Local 0.6 − ERM, paired", "Local < Mixup < ERM (paired CIs)"], rows)


def _figure(ctx: Context, errors: dict, recipes, plan) -> object:
    from ..plots import plot_metric_vs_param

    eps_values = [e for e in plan["eps_values"]]
    samples = {f"local_mixup ({r})": np.stack([errors[r][eps] for eps in eps_values], axis=1) for r in recipes}
    references = {}
    for r in recipes:
        references[f"erm ({r})"] = errors[r]["erm"]
    figure = ctx.figure("spirals_eps.png")
    plot_metric_vs_param(eps_values, samples, figure, param_name="eps (threshold on ||x_i - x_j||)",
                         references=references, log_x=True,
                         title=f"Two spirals: authors' vs corrected recipe ({plan['seeds']} seeds, "
                               f"{plan['epochs']} epochs)")
    return figure


def _verdict(ctx: Context, errors: dict, recipes) -> tuple[str, str]:
    if ctx.quick:
        return "not assessed (quick run)", "too few seeds and epochs to compare methods"
    main = {}
    for recipe in recipes:
        best = _best_eps(errors[recipe])
        main[recipe] = fig3_order(errors[recipe], best)
    return judge(main.get("corrected"), authors=main.get("authors"))


def reproduce(ctx: Context) -> Section:
    recipes = RECIPES if ctx.recipe in (None, "both") else (ctx.recipe,)
    if ctx.recipe not in (None, "both", *RECIPES):
        raise ValueError(f"recipe must be one of {RECIPES} or 'both', got {ctx.recipe!r}")
    triples, plan = _configs(ctx, recipes)
    errors = _errors(ctx, triples)
    verdict, reason = _verdict(ctx, errors, recipes)
    figure = _figure(ctx, errors, recipes, plan)
    deviations = markdown_table(["switch", "authors' notebook", "paper / corrected"],
                                [[name, a, c] for name, (a, c, _, _) in DEVIATIONS.items()])
    body = [
        "Paper (Fig. 3, 1000 runs per point, 200 epochs): Local Mixup's error has a minimum at an intermediate "
        "eps that lies below Mixup (large eps), and both lie below plain training (eps = 0): the order "
        "Local < Mixup < ERM. The figure gives no numbers, so we test that order, each inequality by a paired "
        "95% CI over seeds (every seed trains every method on the same data split).",
        "The two recipes differ in four switches:", deviations,
        "**Curves** (mean ± 95% CI, " + f"{plan['seeds']} seeds)", _curve_table(errors, recipes, plan["eps_values"]),
    ]
    if len(recipes) == 2:
        body += ["**Ablation**: each switch alone, from either recipe (ERM, Mixup = eps 10 at batch 20, and Local "
                 "Mixup at eps 0.6, batch 241; test error %, mean ± 95% CI)", _ablation_table(errors),
                 _attribution(errors)]
    configuration = (f"{plan['seeds']} seeds per point (paper: 1000), {plan['epochs']} epochs (paper: 200), eps in "
                     f"{plan['eps_values']} (the notebook also runs "
                     f"{', '.join(f'{e:g}' for e in PAPER_BATCH_SIZES if e not in plan['eps_values'])}), "
                     f"{plan['n_per_class']} points per class, noise level 0.5 (the committed data files of the "
                     f"authors; the caption's 1.5 is not what the notebook ran), one data split for every seed "
                     f"(data_seed 0, stratified 80/20, standardised with train statistics), Adam lr 0.01, "
                     f"StepLR(300, 0.1) as in the notebook (it never fires in 200 epochs), alpha 1, batch sizes "
                     f"from the notebook, Local Mixup partners uniform over the batch with self (the notebook "
                     f"pairs by a random permutation: the same marginal partner law), trained as batched "
                     f"ensembles. `--recipe authors|corrected` runs one recipe alone (no ablation).")
    return Section(title="Local Mixup Fig. 3: two spirals, test error vs eps", claim=(
        "An intermediate eps gives a lower test error than Mixup (large eps), and both lie below plain training "
        "(eps = 0): Local < Mixup < ERM."),
        verdict=verdict, reason=reason, body="\n\n".join(body), configuration=configuration, figures=[figure])


def _attribution(errors: dict) -> str:
    """Which switch moves Fig. 3's order, read from the ablation (Baena et al. 2022, Fig. 3; no claim beyond the numbers)."""
    holds = [v for v in errors if all(fig3_order(errors[v], 0.6).values())]
    erm = {v: points["erm"].mean() for v, points in errors.items()}
    off = {name: erm["authors"] - erm[f"authors without {name}"] for name in DEVIATIONS}
    on = {name: erm[f"corrected with {name}"] - erm["corrected"] for name in DEVIATIONS}
    key = max(off, key=off.get)
    text = (f"Fig. 3's order at eps 0.6 (Local < Mixup < ERM, paired CIs) holds in: {', '.join(holds) or 'no variant'}. "
            f"What the authors' code changes most is plain training: ERM errs {erm['authors']:.2f} % under it and "
            f"{erm['corrected']:.2f} % under the corrected recipe. Switched off alone, the "
            + ", ".join(f"{name} brings ERM to {erm[f'authors without {name}']:.2f} %" for name in DEVIATIONS)
            + f"; switched on alone in the corrected recipe, the {key} moves ERM by {on[key]:+.2f} points. ")
    if holds and "authors" in holds:
        broken = [name for name in DEVIATIONS if f"authors without {name}" not in holds]
        text += (f"**Fig. 3's order comes from the authors' code**: it disappears when any of "
                 f"{', '.join(broken)} is switched off, and most through the {key}, which makes plain training fail.")
    else:
        text += (f"**Here the order does not appear in either recipe** ({len(errors['authors']['erm'])} seeds, far "
                 f"fewer epochs and runs than the paper); the deviation through which the authors' code moves ERM "
                 f"up toward the mixing methods is the {key}"
                 + (", and only together with the other switches" if on[key] < off[key] / 2 else "") + ".")
    if "mixup241" in errors.get("authors", {}):
        diff = paired_ci(errors["authors"][0.6], errors["authors"]["mixup241"])
        text += (f" With the authors' loss, Local Mixup at eps 0.6 (batch 241) minus Mixup at batch 241 "
                 f"(every pair, same loss) is {diff[0]:+.2f} ± {diff[1]:.2f} points"
                 + (": not separable, so the eps curve is mostly a batch-size curve." if abs(diff[0]) <= diff[1] else
                    "."))
    return text
