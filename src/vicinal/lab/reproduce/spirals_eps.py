"""``spirals-eps``: Local Mixup Fig. 3 (Baena et al. 2022, Sec. V-A), test error vs eps on two spirals.

Protocol of the paper and the authors' notebook (see shared notes): MLP 2-100-100-2 with ReLU, Adam
lr 0.01, one lambda ~ Beta(1, 1) per batch, thresholded graph on standardised inputs, the batch size
grown as eps shrinks so that about the same number of pairs is kept per step. eps = 0 is plain
training (ERM, batch 20); a very large eps keeps every pair (Mixup).
"""

from __future__ import annotations

import numpy as np

from ..config import RunConfig
from ..sweep import run_sweep
from ..store import ResultStore, config_key
from .base import Context, Section, fmt_ci, markdown_table, mean_ci

#: eps -> batch size, as in the authors' notebook (eps = 0 is ERM at batch 20).
PAPER_BATCH_SIZES = {0.6: 241, 1.0: 103, 1.5: 50, 2.0: 33, 2.5: 25, 3.0: 22, 3.5: 20, 4.0: 20, 10.0: 20}


def _configs(ctx: Context) -> tuple[list[dict], dict]:
    if ctx.quick:
        plan = dict(seeds={0.5: 2}, epochs=3, n_per_class=150, eps_values=[1.0, 10.0])
    else:
        # 0.5 is the authors' script level; 1.5 the paper's caption (see the configuration line).
        plan = dict(seeds={0.5: 50, 1.5: 30}, epochs=100, n_per_class=1000, eps_values=sorted(PAPER_BATCH_SIZES))
    configs = []
    for noise, seeds in plan["seeds"].items():
        base = dict(dataset="spirals", dataset_params={"n_per_class": plan["n_per_class"], "noise": noise},
                    model="mlp", model_params={"widths": [100, 100]}, optimizer="adam", lr=0.01,
                    epochs=plan["epochs"], alpha=1.0, eval_rescaled=False, data_seed=0)
        for seed in range(seeds):
            configs.append(dict(base, method="erm", batch_size=20, seed=seed))
            configs.append(dict(base, method="mixup", batch_size=20, seed=seed))
            for eps in plan["eps_values"]:
                configs.append(dict(base, method="local_mixup", graph="threshold", eps=eps,
                                    batch_size=PAPER_BATCH_SIZES[eps], seed=seed))
    return [RunConfig.from_dict(c).to_dict() for c in configs], plan


def _runner():
    """The batched ensemble trainer when available (many seeds at once), else one run at a time."""
    try:
        from ..ensemble import batch_group_key, run_batch
    except ImportError:  # the batched trainer is optional for this reproduction
        from ..trainer import run
        return dict(run_fn=run)
    return dict(batch_fn=run_batch, group_key=batch_group_key, max_batch=100)


def _errors_by_noise(configs: list[dict], store_path) -> dict[float, dict[tuple, list[float]]]:
    """Test errors (%) per noise level and (method, eps), in seed order."""
    with ResultStore(store_path) as store:
        by_key = {row.key: row.metrics for row in store.rows()}
    errors: dict[float, dict[tuple, list[float]]] = {}
    for config in configs:
        name = (config["method"], config["eps"] if config["method"] == "local_mixup" else None)
        noise = config["dataset_params"]["noise"]
        errors.setdefault(noise, {}).setdefault(name, []).append(100 * by_key[config_key(config)]["test_error"])
    return errors


def _one_noise_level(ctx: Context, noise: float, errors: dict, plan: dict) -> tuple[str, dict, str]:
    """Table, facts and figure for one noise level."""
    from ..plots import plot_metric_vs_param

    eps_values = plan["eps_values"]
    local = np.array([errors[("local_mixup", eps)] for eps in eps_values]).T  # (seeds, eps)
    erm, mixup = np.array(errors[("erm", None)]), np.array(errors[("mixup", None)])
    figure = ctx.figure(f"spirals_eps_noise{noise:g}.png")
    plot_metric_vs_param(eps_values, {"local_mixup": local}, figure, param_name="eps (threshold on ||x_i - x_j||)",
                         references={"erm": erm, "mixup": mixup}, log_x=True,
                         title=f"Two spirals, noise {noise:g}: test error vs eps ({len(erm)} seeds, "
                               f"{plan['epochs']} epochs)")
    rows = [["ERM (eps = 0)", 20, fmt_ci(erm)], ["Mixup (all pairs)", 20, fmt_ci(mixup)]]
    rows += [[f"Local Mixup eps = {eps:g}", PAPER_BATCH_SIZES[eps], fmt_ci(local[:, i])]
             for i, eps in enumerate(eps_values)]
    best = int(np.argmin(local.mean(0)))
    (best_mean, best_half), (erm_mean, erm_half), (mix_mean, mix_half) = mean_ci(local[:, best]), mean_ci(erm), \
        mean_ci(mixup)
    facts = dict(best_eps=eps_values[best], best=best_mean, mixup=mix_mean, erm=erm_mean,
                 below_mixup=best_mean + best_half < mix_mean - mix_half,
                 below_erm=best_mean + best_half < erm_mean - erm_half,
                 mixup_below_erm=mix_mean + mix_half < erm_mean - erm_half)
    table = (f"**Noise {noise:g}** ({len(erm)} seeds)\n\n"
             + markdown_table(["method", "batch size", "test error % (mean ± 95% CI)"], rows))
    return table, facts, figure


def _verdict(ctx: Context, facts: dict[float, dict]) -> tuple[str, str]:
    if ctx.quick:
        return "not assessed (quick run)", "too few seeds and epochs to compare methods"
    summary = "; ".join(
        f"noise {noise:g}: best Local Mixup (eps {f['best_eps']:g}) {f['best']:.2f} %, Mixup {f['mixup']:.2f} %, "
        f"ERM {f['erm']:.2f} %" for noise, f in facts.items())
    if any(f["below_mixup"] and f["below_erm"] and f["mixup_below_erm"] for f in facts.values()):
        return "reproduced", summary + " (Local < Mixup < ERM with disjoint CIs)"
    if any(f["below_mixup"] for f in facts.values()):
        return "partly reproduced", summary + (". Local Mixup beats Mixup with disjoint CIs and its error falls "
                                               "as eps shrinks, but Mixup is never better than ERM here, so the "
                                               "full order of Fig. 3 does not hold")
    return "not reproduced", summary


def reproduce(ctx: Context) -> Section:
    configs, plan = _configs(ctx)
    runner = _runner()
    run_sweep(configs, store=ctx.store_path, workers=ctx.workers if "run_fn" in runner else 1,
              progress=not ctx.quick, **runner)
    tables, facts, figures = [], {}, []
    for noise, errors in _errors_by_noise(configs, ctx.store_path).items():
        table, facts[noise], figure = _one_noise_level(ctx, noise, errors, plan)
        tables.append(table)
        figures.append(figure)
    verdict, reason = _verdict(ctx, facts)
    body = (
        "Paper (Fig. 3, 1000 runs per point, 200 epochs): Local Mixup's error has a minimum at an "
        "intermediate eps that lies below Mixup (large eps), and both lie below plain training (eps = 0). "
        "The paper gives the curve as a figure only, so we compare the shape. Local Mixup at eps = 10 keeps "
        "every pair: eq. 2's Mixup, whose partners are uniform over the batch, self pairs included (a 1/B share "
        "of unmixed samples); the Mixup row pairs along a random cycle, never self.\n\n" + "\n\n".join(tables)
    )
    seeds = ", ".join(f"{n} seeds at noise {noise:g}" for noise, n in plan["seeds"].items())
    configuration = (f"{seeds} (paper: 1000 per point), {plan['epochs']} epochs (paper: 200), "
                     f"{plan['n_per_class']} points per class with Gaussian noise 0.5 (the authors' script level) "
                     f"and 1.5 (the paper's caption; the arms then overlap so much that a 1-NN rule misclassifies "
                     f"~30 % of points), one data split for every seed (data_seed 0), MLP 2-100-100-2, Adam lr 0.01, "
                     f"alpha 1, batch sizes from the authors' notebook, loss reduction 'mean' (eq. 2 / B), "
                     f"trained as batched ensembles.")
    return Section(title="Local Mixup Fig. 3: two spirals, test error vs eps", claim=(
        "An intermediate eps gives a lower test error than Mixup (large eps) and plain training (eps = 0)."),
        verdict=verdict, reason=reason, body=body, configuration=configuration, figures=figures)
