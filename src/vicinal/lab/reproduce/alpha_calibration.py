"""``alpha-calibration``: k-Mixup Algorithm 1, alpha_k at constant xi (Greenewald et al. 2023, Sec. 5.1).

For each k-Mixup toy (App. B, Table 9) and for digits, :func:`vicinal.alpha.calibrate_alpha` runs the
paper's loop (multiply alpha by c until the RMS perturbation xi of k-Mixup reaches that of 1-mixup at
alpha_1). We report alpha_k, the xi actually reached, and the largest xi any alpha can give with block
size k (sqrt(E W2^2 / 4), since E[min(lam, 1 - lam)^2] < 1/4), next to Table 9's (alpha, xi) pairs.
A direct simulation of k-Mixup perturbations (exact matching, lam ~ Beta(alpha_k, alpha_k)) checks the
factorised xi that Algorithm 1 relies on.
"""

from __future__ import annotations

import numpy as np

from ...alpha import calibrate_alpha
from ...theory.clusters import optimal_matching
from ..datasets import load_dataset
from .base import Context, Section, judge, markdown_table, mean_ci

#: Table 9 (App. B): alpha of 1-mixup -> published xi, per toy.
PAPER_XI = {
    "one_ring": {0.25: 0.10, 1.0: 0.15, 4.0: 0.20, 16.0: 0.23, 64.0: 0.25},
    "four_bars": {0.25: 0.50, 1.0: 0.78, 4.0: 1.0, 16.0: 1.1, 64.0: 1.2},
    "swiss_roll": {0.25: 1.2, 1.0: 1.9, 4.0: 2.4, 16.0: 2.8, 64.0: 3.0},
}
DATASETS = ("one_ring", "four_bars", "swiss_roll", "digits")
MAX_ALPHA = 1000.0  # the paper's threshold gamma (not published); alpha_k stops there


def _plan(quick: bool) -> dict:
    if quick:
        return dict(datasets=("one_ring",), ks=[1, 2, 8], alphas=[1.0, 64.0], n_trials=400, sim_pairs=400)
    return dict(datasets=DATASETS, ks=[1, 2, 4, 8, 16, 32], alphas=[0.25, 1.0, 4.0, 16.0, 64.0], n_trials=10_000,
                sim_pairs=20_000)


def simulated_xi(x: np.ndarray, *, k: int, alpha: float, n_pairs: int, seed: int) -> tuple[float, float]:
    """RMS distance of k-Mixup virtual points to their nearest endpoint, by direct simulation.

    Greenewald et al. 2023, Sec. 2 and Algorithm 1: xi^2 = E[min(lam, 1 - lam)^2 ||x_i - x_sigma(i)||^2]
    for two random k-subsets matched by optimal transport and lam ~ Beta(alpha, alpha). Unlike
    :func:`vicinal.alpha.perturbation_rms` nothing is factorised: each matched pair gets its own lam.

    Parameters
    ----------
    x : numpy.ndarray, shape (n, d)
        Dataset.
    k : int
        Block size, 1 <= k <= n.
    alpha : float
        Beta parameter, > 0.
    n_pairs : int
        Number of matched pairs simulated (rounded up to whole blocks of k), >= 2 k.
    seed : int
        Seed of the numpy Generator.

    Returns
    -------
    xi : float
        Simulated RMS perturbation.
    half_width : float
        95% half-width of xi (Student t over blocks, which are independent, then the delta method
        for the square root).
    """
    if not 1 <= k <= len(x):
        raise ValueError(f"k must be in [1, {len(x)}], got {k}")
    if not (np.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a finite number > 0, got {alpha}")
    if n_pairs < 2 * k:
        raise ValueError(f"n_pairs must be >= 2 * k = {2 * k} (two blocks, for a confidence interval), got {n_pairs}")
    rng = np.random.default_rng(seed)
    squares = []
    for _ in range(-(-n_pairs // k)):
        gamma = rng.choice(len(x), size=k, replace=False)
        zeta = rng.choice(len(x), size=k, replace=False)
        partner = x[zeta][optimal_matching(x[gamma], x[zeta])]
        lam = rng.beta(alpha, alpha, size=k)
        squares.append(np.mean(np.minimum(lam, 1 - lam) ** 2 * np.sum((x[gamma] - partner) ** 2, axis=1)))
    mean_square, half = mean_ci(squares)
    xi = float(np.sqrt(mean_square))
    return xi, half / (2 * xi)


def _points(name: str) -> np.ndarray:
    from .kmixup_toys import one_ring_params  # the One Ring that kmixup-toys trains on

    data = load_dataset(name, seed=0, **(one_ring_params() if name == "one_ring" else {}))
    return data.x_train.numpy().reshape(len(data.x_train), -1).astype(np.float64)


def _dataset_section(ctx: Context, name: str, plan: dict) -> tuple[str, dict, object]:
    from ..plots import plot_series

    x = _points(name)
    ks, alphas = plan["ks"], plan["alphas"]
    cal = {(a, k): calibrate_alpha(x, k=k, alpha=a, n_trials=plan["n_trials"], max_alpha=MAX_ALPHA, seed=0)
           for a in alphas for k in ks}
    ceiling = [np.sqrt(cal[(alphas[0], k)].mean_sq_w2 / 4) for k in ks]
    paper = PAPER_XI.get(name, {})
    rows = []
    for a in alphas:
        row = [f"{a:g}", f"{paper[a]:.2f}" if a in paper else "—", f"{cal[(a, 1)].xi:.3f}"]
        for k in ks[1:]:
            c = cal[(a, k)]
            row.append(f"{c.alpha_k:.3g}" if c.reachable else f"cap ({c.xi_k:.3f})")
        rows.append(row)
    rows.append(["largest xi for any alpha", "", f"{ceiling[0]:.3f}"] + [f"{v:.3f}" for v in ceiling[1:]])
    header = ["alpha_1", "paper xi (Table 9)", "our xi (k = 1)"] + [f"alpha_k, k = {k}" for k in ks[1:]]

    # Direct simulation at alpha_k for the reachable cells of alpha_1 = 1 (Algorithm 1's factorisation).
    sim_rows, worst = [], 0.0
    a_check = 1.0 if 1.0 in alphas else alphas[0]
    for k in ks:
        c = cal[(a_check, k)]
        sim, half = simulated_xi(x, k=k, alpha=c.alpha_k, n_pairs=plan["sim_pairs"], seed=k)
        worst = max(worst, abs(sim - c.xi_k) / half)
        sim_rows.append([k, f"{c.alpha_k:.3g}", f"{c.xi:.3f}", f"{c.xi_k:.3f}", f"{sim:.3f} ± {half:.3f}",
                         "yes" if c.reachable else "no"])

    figure = ctx.figure(f"alpha_calibration_{name}.png")
    series = {f"xi reached, alpha_1 = {a:g}": [cal[(a, k)].xi_k for k in ks] for a in alphas}
    series["largest xi for any alpha_k"] = ceiling
    plot_series(ks, series, figure, x_label="k (block size)", y_label="RMS perturbation xi", log_x=True,
                log_y=True, title=f"Algorithm 1 on {name}: xi held constant where reachable")
    unreachable = [(a, k) for a in alphas for k in ks if not cal[(a, k)].reachable]
    first_cap = {a: min((k for b, k in unreachable if b == a), default=None) for a in alphas}
    cap_text = "; ".join(f"alpha_1 = {a:g} from k = {k}" for a, k in first_cap.items() if k is not None)
    matches_paper = [abs(cal[(a, 1)].xi / paper[a] - 1) for a in alphas if a in paper]
    text = (
        f"**{name}** ({x.shape[0]} training points, dimension {x.shape[1]}). alpha_k from Algorithm 1 "
        f"(c = 1.1, gamma = {MAX_ALPHA:g}, N = {plan['n_trials']}); 'cap (xi_k)' means the loop stopped at gamma "
        "with only xi_k reached.\n\n"
        + markdown_table(header, rows)
        + "\n\nTarget xi out of reach: " + (cap_text or "never") + "."
        + f"\n\nDirect simulation of k-Mixup perturbations at alpha_1 = {a_check:g} ({plan['sim_pairs']} matched "
        "pairs, one lam per pair):\n\n"
        + markdown_table(["k", "alpha_k", "target xi", "xi_k (Algorithm 1)", "xi simulated (95% CI)", "reachable"],
                         sim_rows)
        + "\n"
    )
    stats = dict(unreachable=unreachable, n_cells=len(alphas) * len(ks), sim_worst=worst,
                 paper_gap=max(matches_paper) if matches_paper else None)
    return text, stats, figure


def reproduce(ctx: Context) -> Section:
    """Run Algorithm 1 of Greenewald et al. 2023 (Sec. 5.1) on the k-Mixup toys and digits.

    Parameters
    ----------
    ctx : Context
        Output folders and ``quick`` (one toy, small N for CI).

    Returns
    -------
    Section
        Per dataset: alpha_k for each (alpha_1, k) next to Table 9's xi, the largest reachable xi per k,
        a direct simulation of k-Mixup perturbations, and a figure of the xi reached against k.
    """
    plan = _plan(ctx.quick)
    texts, figures, stats = [], [], {}
    for name in plan["datasets"]:
        text, stats[name], figure = _dataset_section(ctx, name, plan)
        texts.append(text)
        figures.append(figure)
    n_unreachable = sum(len(s["unreachable"]) for s in stats.values())
    n_cells = sum(s["n_cells"] for s in stats.values())
    sim_worst = max(s["sim_worst"] for s in stats.values())
    gaps = [s["paper_gap"] for s in stats.values() if s["paper_gap"] is not None]
    summary = (
        f"Our k = 1 xi differ from Table 9's by at most {max(gaps):.0%} (the toy sizes were chosen to match Table "
        "9's k = 1 values, so this checks our reconstruction, not Algorithm 1). " if gaps else "")
    summary += (
        f"The simulated xi of real k-Mixup pairs at alpha_k agrees with Algorithm 1's factorised xi_k to within "
        f"{sim_worst:.1f} CI half-widths (worst cell). In {n_unreachable} of {n_cells} (alpha_1, k) cells no "
        "alpha_k reaches the target: with block size k, xi can never exceed sqrt(E W2^2 / 4), and optimal matching shrinks E W2^2 "
        "as k grows. Table 9 labels every k of a column with the k = 1 value of xi; in the unreachable cells "
        "listed above (those with k <= 16 are cells of Table 9), Algorithm 1 stops at gamma and k-Mixup runs "
        "with a smaller xi than the column states, unless the authors' data differ from our reconstructions.")
    simulation_agrees = sim_worst < 3.0  # in units of the 95% half-width
    main = {f"Algorithm 1's xi_k agrees with the simulated xi of k-Mixup pairs (worst {sim_worst:.1f} CI "
            f"half-widths)": simulation_agrees,
            f"alpha_k reaches the target xi in every (alpha_1, k) cell ({n_cells - n_unreachable} of {n_cells})":
                n_unreachable == 0}
    verdict, reason = judge(main)
    reason += (". Where the target is reachable the calibration works; where it is not (optimal matching shrinks "
               "the largest xi a block of size k can give), Table 9's columns do not hold xi fixed")
    if ctx.quick:
        reason = "quick CI run (small N): " + reason
    configuration = (
        f"`vicinal.alpha.calibrate_alpha` (squared distances as in the paper; exact E[min(lam, 1-lam)^2]), "
        f"method 'multiplicative', c = 1.1, gamma = {MAX_ALPHA:g}, N = {plan['n_trials']}, seed 0; toys and digits "
        "from `load_dataset(name, seed=0)`, training split, digits flattened to 64 pixels in [0, 1]."
    )
    body = (
        "Paper (Table 9, App. B): each column fixes xi (root mean squared perturbation) at the value alpha gives "
        "for k = 1, and Algorithm 1 raises alpha_k for larger k to keep it. Digits has no published xi.\n\n"
        + "\n".join(texts) + "\n" + summary + "\n"
    )
    return Section(title="k-Mixup Algorithm 1: alpha_k at constant xi", claim=(
        "Raising alpha to alpha_k (Algorithm 1) keeps the RMS perturbation xi of k-Mixup equal to that of "
        "1-mixup as k grows (the premise of Table 9 and Tables 2-8)."),
        verdict=verdict, reason=reason, body=body, configuration=configuration, figures=figures)
