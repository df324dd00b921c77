"""``vicinal reproduce kmixup-uci``: k-Mixup Table 4, rows Iris and Breast Cancer.

Greenewald et al. 2023, Sec. 5.2: fully connected networks (Iris: 120 and 84 hidden units; Breast
Cancer: 120, 120 and 84), learning rate 0.005 instead of the default 0.1, k in {1, 2, 4, 8, 16},
alpha in {0.05, 0.1, 1} (the k = 1 value; larger k use the alpha_k of Algorithm 1 at the same xi),
20 random trials. Their claim: k-mixup improves over 1-mixup on every UCI set, best with small alpha
and k >= 4.
"""

from __future__ import annotations

import numpy as np

from vicinal.alpha import perturbation_rms

from ..datasets import load_dataset
from ..plots import plot_heatmap
from .base import Context, Section, judge, markdown_table, mean_ci, paired_ci
from .runs import calibrated_alphas, cell, compute_note, half_widths, sweep_metrics

KS = (1, 2, 4, 8, 16)
ALPHAS = (0.05, 0.1, 1.0)
WIDTHS = {"iris": [120, 84], "breast_cancer": [120, 120, 84]}
TITLES = {"iris": "Iris", "breast_cancer": "Breast Cancer"}

#: Greenewald et al. 2023, Table 4 (test error %, 20 trials): rows alpha = 0.05, 0.1, 1; columns k = 1..16.
PAPER_TABLE4 = {
    "iris": [[6.70, 4.20, 3.30, 2.50, 3.70], [6.00, 2.90, 2.70, 3.50, 3.60], [7.00, 3.90, 2.90, 3.80, 2.90]],
    "breast_cancer": [[10.32, 9.08, 9.52, 8.63, 9.35], [10.42, 9.75, 9.92, 9.14, 10.25],
                      [12.31, 10.83, 10.23, 9.85, 9.15]],
}
PAPER_XI = {"iris": [0.07, 0.10, 0.22], "breast_cancer": [0.19, 0.26, 0.59]}
PAPER_ERM = {"iris": 4.10, "breast_cancer": 11.25}


def _protocol(quick: bool) -> dict:
    if quick:
        return dict(datasets=("iris",), ks=(1, 2), alphas=(1.0,), seeds={"iris": (0,)},
                    epochs={"iris": 2}, n_trials=200)
    return dict(datasets=("iris", "breast_cancer"), ks=KS, alphas=ALPHAS,
                seeds={"iris": tuple(range(20)), "breast_cancer": tuple(range(20))},
                epochs={"iris": 100, "breast_cancer": 50}, n_trials=4000)


def _config(dataset: str, *, method: str, seed: int, epochs: int, batch_size: int = 32, **extra) -> dict:
    """One UCI run: the paper's MLP, SGD lr 0.005 momentum 0.9 wd 1e-4, lr / 10 at 1/2 and 3/4, batch 32."""
    return dict(dataset=dataset, model="mlp", model_params={"widths": WIDTHS[dataset]}, method=method,
                optimizer="sgd", lr=0.005, momentum=0.9, weight_decay=1e-4, schedule="multistep",
                milestones=[epochs // 2, (3 * epochs) // 4], gamma=0.1, epochs=epochs, batch_size=batch_size,
                eval_rescaled=False, seed=seed, **extra)


#: What Sec. 5.2 leaves open; each changes the numbers, the first two by more than the k effect.
UNKNOWNS = ("**What the paper leaves open.** Sec. 5.2 gives the networks, lr 0.005, 20 trials and Table 4, but not "
            "the batch size, the input scaling (our standardised inputs give other xi than Table 4's; min-max "
            "scaling matches Iris, neither matches Breast Cancer), the split, or whether 200 epochs apply (we train "
            "Iris 100 and Breast Cancer 50 epochs). No input scaling we tried reaches the paper's 11.25 % ERM "
            "error on Breast Cancer: its networks there were far less trained than ours. The table below shows "
            "how the k effect depends on the batch size, the largest unknown.")

#: Batch sizes of the sensitivity table (k = 16 needs at least 16).
SENSITIVITY_BATCHES = (32, 64, 128)


def _batch_sensitivity(ctx: Context, p: dict) -> tuple[str, list[dict]]:
    """k = 16 − k = 1 at alpha = 1 (Algorithm 1's alpha_16) for several batch sizes, paired over seeds."""
    rows, all_metrics = [], []
    for dataset in p["datasets"]:
        seeds, epochs = p["seeds"][dataset], p["epochs"][dataset]
        calib = calibrated_alphas(load_dataset(dataset, seed=0).x_train, (1, 16), (1.0,), p["n_trials"])
        for batch in SENSITIVITY_BATCHES:
            configs = [_config(dataset, method="kmixup", k=k, alpha=round(calib[k, 1.0].alpha_k, 6), seed=s,
                               epochs=epochs, batch_size=batch) for k in (1, 16) for s in seeds]
            configs += [_config(dataset, method="erm", seed=s, epochs=epochs, batch_size=batch) for s in seeds]
            metrics = sweep_metrics(ctx, configs)
            all_metrics += metrics
            e = 100 * np.array([m["test_error"] for m in metrics]).reshape(3, len(seeds))
            diff = paired_ci(e[1], e[0])
            rows.append([TITLES[dataset], batch, cell(e[2] / 100), cell(e[0] / 100), cell(e[1] / 100),
                         f"{diff[0]:+.2f} ± {diff[1]:.2f}"])
    return ("**Batch-size sensitivity** (α = 1, test error %, mean ± 95% CI; last column paired over seeds)\n\n"
            + markdown_table(["dataset", "batch", "ERM", "k=1", "k=16", "k=16 − k=1"], rows)), all_metrics


def _best_cell_checks(best_cells: dict) -> dict[str, bool]:
    """Secondary claim of Sec. 5.2: the best cell has a small alpha (<= 0.1) and k >= 4."""
    return {f"{TITLES[d]}: best cell (α={a:g}, k={k}) has small α and k ≥ 4": bool(a <= 0.1 and k >= 4)
            for d, (a, k) in best_cells.items()}


def reproduce(ctx: Context) -> Section:
    """k-Mixup Table 4 (Iris, Breast Cancer): test error over k x alpha plus ERM (Greenewald et al. 2023, Sec. 5.2)."""
    p = _protocol(ctx.quick)
    body, figures, checks, run_metrics, best_cells = [], [], [], [], {}
    for dataset in p["datasets"]:
        seeds, epochs = p["seeds"][dataset], p["epochs"][dataset]
        calib = calibrated_alphas(load_dataset(dataset, seed=0).x_train, p["ks"], p["alphas"], p["n_trials"])
        configs = [_config(dataset, method="kmixup", k=k, alpha=round(calib[k, a].alpha_k, 6), seed=s,
                           epochs=epochs)
                   for s in seeds for a in p["alphas"] for k in p["ks"]]
        erm = [_config(dataset, method="erm", seed=s, epochs=epochs) for s in seeds]
        metrics = sweep_metrics(ctx, configs + erm)
        errors = np.array([m["test_error"] for m in metrics[:len(configs)]]).reshape(
            len(seeds), len(p["alphas"]), len(p["ks"]))
        erm_errors = np.array([m["test_error"] for m in metrics[len(configs):]])
        means = 100 * errors.mean(axis=0)
        halves = half_widths(errors)
        path = ctx.figure(f"kmixup_uci_{dataset}.png")
        plot_heatmap(p["ks"], p["alphas"], means.T, path, ci_half_widths=None if halves is None else halves.T,
                     title=f"{TITLES[dataset]}: test error (%), ours (k-Mixup Table 4), {len(seeds)} seeds")
        figures.append(path)
        best_cells[dataset] = np.unravel_index(int(np.argmin(means)), means.shape)
        best_cells[dataset] = (p["alphas"][best_cells[dataset][0]], p["ks"][best_cells[dataset][1]])
        rows_check = _k_gain(errors)
        checks += [(dataset, a, gain) for a, gain in zip(p["alphas"], rows_check)]
        minmax_xi = [_minmax_xi(dataset, a, p["n_trials"]) for a in p["alphas"]]
        body.append(_dataset_table(dataset, p, calib, minmax_xi, errors, erm_errors, rows_check))
        run_metrics += metrics

    main = {f"{TITLES[d]} α={a:g}: mean(k≥2) below k=1": bool(gain[0] + gain[1] < 0)  # NaN CI (1 seed): fails
            for d, a, gain in checks}
    verdict, reason = judge(main, _best_cell_checks(best_cells))
    seeds_text = ", ".join(f"{TITLES[d]} {len(p['seeds'][d])}" for d in p["datasets"])
    epochs_text = ", ".join(f"{TITLES[d]} {p['epochs'][d]}" for d in p["datasets"])
    reason += (f" (each by the paired 95% CI of mean(k≥2) − k=1 over seeds; paper: k-mixup better in every row). "
               f"Protocol: seeds {seeds_text} (paper 20), epochs {epochs_text} (paper 200); the paper gives no batch "
               f"size and no input scaling (see the unknowns below)")
    if ctx.quick:
        verdict, reason = "not assessed (quick run)", "too few seeds and epochs to judge; " + reason
    configuration = (
        f"MLPs of Sec. 5.2 (Iris 4-120-84-3, Breast Cancer 30-120-120-84-2, ReLU), SGD lr 0.005, momentum 0.9, "
        f"weight decay 1e-4, lr / 10 at 1/2 and 3/4 of training, batch 32 (paper: not given; k = 16 needs 32), "
        f"epochs {epochs_text}, seeds {seeds_text}, each seed a fresh stratified 80/20 split with "
        f"standardised features; alpha_k from Algorithm 1 (`calibrate_alpha`, N = {p['n_trials']}) on the "
        f"seed-0 training inputs. Test error in %, mean ± 95% CI over seeds.")
    if not ctx.quick:
        sensitivity, sensitivity_metrics = _batch_sensitivity(ctx, p)
        body += [UNKNOWNS, sensitivity]
        run_metrics += sensitivity_metrics
    body.append(compute_note(run_metrics))
    return Section(title="k-Mixup Table 4: Iris and Breast Cancer, k x alpha",
                   claim="on small UCI datasets k-mixup (k > 1) improves over 1-mixup at every alpha, best with "
                         "small alpha and k >= 4 (Greenewald et al. 2023, Sec. 5.2, Table 4)",
                   verdict=verdict, reason=reason, body="\n\n".join(body), configuration=configuration,
                   figures=figures)


def _k_gain(errors: np.ndarray) -> list[tuple[float, float]]:
    """Per alpha: mean over k >= 2 minus k = 1, paired by seed, in percent: (mean, 95% CI half-width)."""
    gains = 100 * (errors[:, :, 1:].mean(axis=2) - errors[:, :, 0])
    return [mean_ci(gains[:, i]) for i in range(gains.shape[1])]


def _minmax_xi(dataset: str, alpha: float, n_trials: int) -> float:
    """xi of 1-mixup on the seed-0 training inputs min-max scaled to [0, 1] (to compare with Table 4's xi)."""
    x = load_dataset(dataset, seed=0, standardize=False).x_train
    low, high = x.min(0).values, x.max(0).values
    return perturbation_rms((x - low) / (high - low), k=1, alpha=alpha, n_trials=n_trials)


def _dataset_table(dataset, p, calib, minmax_xi, errors, erm_errors, gains) -> str:
    """Markdown: our alpha x k errors next to Table 4, our xi next to the paper's, ERM, paired k-gain."""
    header = ["α", "ξ ours / min-max scaled / paper"] + [f"k={k}" for k in p["ks"]] + ["mean(k≥2) − k=1, paired"]
    rows = []
    for i, a in enumerate(p["alphas"]):
        paper_row = PAPER_TABLE4[dataset][ALPHAS.index(a)]
        row = [f"{a:g}", f"{calib[1, a].xi:.2f} / {minmax_xi[i]:.2f} / {PAPER_XI[dataset][ALPHAS.index(a)]:.2f}"]
        row += [f"{cell(errors[:, i, j])} [{paper_row[KS.index(k)]:.2f}]" for j, k in enumerate(p["ks"])]
        row.append(f"{gains[i][0]:+.2f} ± {gains[i][1]:.2f}" if errors.shape[0] > 1 else f"{gains[i][0]:+.2f}")
        rows.append(row)
    erm = f"ERM: {cell(erm_errors)} % (paper {PAPER_ERM[dataset]:.2f} %)."
    gaps = {(k, a): 100 * errors[:, i, j].mean() - PAPER_TABLE4[dataset][ALPHAS.index(a)][KS.index(k)]
            for i, a in enumerate(p["alphas"]) for j, k in enumerate(p["ks"])}
    k_gap, a_gap = max(gaps, key=lambda key: abs(gaps[key]))
    gap = (f"Largest difference from Table 4: {gaps[k_gap, a_gap]:+.2f} points (ours − paper) at k = {k_gap}, "
           f"α = {a_gap:g}.")
    return (f"### {TITLES[dataset]}\n\nOurs: test error %, mean ± 95% CI [paper Table 4].\n\n"
            + markdown_table(header, rows) + "\n\n" + erm + " " + gap)
