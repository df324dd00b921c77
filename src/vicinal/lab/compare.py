"""``vicinal compare``: several methods x several seeds on one dataset, a table and a figure.

The default settings per dataset follow the papers' protocols (Local Mixup Sec. V-A for the
spirals: MLP 2-100-100-2, Adam, lr 0.01), shortened so the comparison finishes in minutes on a
laptop; every setting can be overridden with ``--set key=value``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Sequence

import torch

from .config import RunConfig, apply_settings, canonical_config, used_settings
from .datasets import load_dataset
from .ensemble import batch_group_key, run_batch
from .evaluate import probability_fn
from .models import build_model
from .store import ResultStore, config_key
from .sweep import run_sweep
from .sweep.runner import stored_key

DEFAULT_METHODS = ("erm", "mixup", "local_mixup", "kmixup")

#: Per-dataset defaults: a short version of the paper protocol for that data.
PRESETS: dict[str, dict[str, Any]] = {
    # Gaussian noise 0.5: the level of the authors' committed data, with the zero-mean noise the paper's text
    # implies (their files use one-sided Uniform[0, 0.5) offsets: dataset_params.noise_model=uniform_offset).
    # The caption's 1.5 merges the two arms (1-NN errs ~30 %).
    "spirals": dict(dataset_params={"noise": 0.5}, model="mlp", model_params={"widths": [100, 100]},
                    optimizer="adam", lr=0.01, epochs=60,
                    batch_size=32, alpha=1.0, graph="threshold", eps=1.0, k=8),
    "moons": dict(model="rff", model_params={"n_features": 1000, "sigma": 10.0}, optimizer="sgd", lr=5.0,
                  momentum=0.0, epochs=30, batch_size=50, alpha=1.0, graph="threshold", eps=0.5, k=8),
    # Image sets get the papers' convolutional networks (k-Mixup Sec. 5 and Carratino Sec. 5: PreAct
    # ResNet-18 on CIFAR, SGD 0.1 / momentum 0.9 / weight decay 1e-4, lr / 10 at epochs 100 and 150 of
    # 200; LeNet on (Fashion-)MNIST). Hours per run on a CPU: shorten with --set epochs=... The kNN graph
    # needs no distance scale, which raw pixel distances would otherwise set for eps / decay.
    "cifar10": dict(model="preact_resnet18", optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-4, epochs=200,
                    schedule="multistep", milestones=[100, 150], gamma=0.1, batch_size=128, alpha=1.0,
                    graph="knn", n_neighbors=32, k=16),
    "mnist": dict(model="lenet", optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4, epochs=30,
                  batch_size=128, alpha=1.0, graph="knn", n_neighbors=32, k=16),
    "digits": dict(model="lenet", optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4, epochs=30,
                   batch_size=64, alpha=1.0, graph="exponential", decay=0.2, k=16),
}
PRESETS["cifar100"] = PRESETS["cifar10"]
PRESETS["fashion_mnist"] = PRESETS["mnist"]
# Any other data: the exponential graph relative to each batch's median pair distance, so Local Mixup
# weights pairs the same way whatever the data's units (an absolute decay fits one scale only).
GENERIC = dict(model="mlp", model_params={"widths": [100, 100]}, optimizer="adam", lr=1e-3, epochs=50,
               batch_size=32, alpha=1.0, graph="exponential", decay=1.0, relative=True, k=8)


def compare_configs(dataset: str, methods: Sequence[str], seeds: int, overrides: Sequence[str] = ()) -> list[dict]:
    """Run configs for ``methods x seeds`` on ``dataset``: the preset, then ``key=value`` overrides."""
    base = dict(PRESETS.get(dataset, GENERIC), dataset=dataset)
    base = apply_settings(base, overrides)
    configs = []
    for method in methods:
        for seed in range(seeds):
            configs.append(RunConfig.from_dict(dict(base, method=method, seed=seed)).to_dict())
    return configs


def run_compare(dataset: str, *, methods: Sequence[str] = DEFAULT_METHODS, seeds: int = 5, out: str | Path,
                overrides: Sequence[str] = (), workers: int = 1, progress: bool = True) -> dict[str, Any]:
    """Train every method on every seed (resumable), write the table and the figures, return their paths.

    Results go to ``out/results.sqlite`` (re-running skips finished runs), trained weights to
    ``out/models/``, the Markdown table to ``out/table.md`` and, for 2-D data, the decision
    boundaries of seed 0 to ``out/decision_boundaries.png`` (the papers' Fig. 1).
    """
    from .report import paired_differences, summarize
    from .report_command import rescaled_notes

    out = Path(out)
    configs = compare_configs(dataset, methods, seeds, overrides)
    model_dir = out / "models"
    # Batched ensembles where the model allows (the seeds of one method train together), saving each model.
    summary = run_sweep(configs, None, batch_fn=functools.partial(run_batch, model_dir=str(model_dir)),
                        group_key=batch_group_key, max_batch=100, store=out / "results.sqlite", workers=workers,
                        progress=progress, canonical=canonical_config)
    with ResultStore(out / "results.sqlite") as store:
        keys = {config_key(c) for c in configs}
        keyed = [(stored_key(r, canonical_config), r) for r in store.rows()]
        rows = [dict(config=used_settings(r.config), metrics=r.metrics, key=key) for key, r in keyed if key in keys]
    table = summarize(rows, by=["method"], metrics=["test_error", "test_nll", "test_ece"])
    text, markdown = table.to_text(), table.to_markdown()
    # Carratino eq. 22 undoes mixup-style shrinkage; ERM has none to undo, so it is left out here.
    rescaled = [r for r in rows if "rescaled_test_error" in r["metrics"] and r["config"]["method"] != "erm"]
    if rescaled:
        table = summarize(rescaled, by=["method"], metrics=["rescaled_test_error", "rescaled_test_nll",
                                                            "rescaled_test_ece"])
        notes = "".join(f"\nnote: {line}" for line in rescaled_notes(rescaled))
        text += "\n\nRescaled prediction (Carratino et al. 2020, eq. 22):\n" + table.to_text() + notes
        markdown += "\n\nRescaled prediction (Carratino et al. 2020, eq. 22):\n\n" + table.to_markdown() + notes
    if "erm" in methods and len(methods) > 1:
        diffs = paired_differences(rows, baseline="erm", metrics=["test_error", "test_nll", "test_ece"])
        text += "\n\nPaired differences against ERM (same seeds; negative = better than ERM):\n" + diffs.to_text()
        markdown += "\n\nPaired differences against ERM (same seeds):\n\n" + diffs.to_markdown()
    line = takeaway(rows, dataset)
    if line:
        text += "\n\n" + line
        markdown += "\n\n" + line
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(markdown + "\n")
    paths = {"table": out / "table.md", "store": out / "results.sqlite"}
    data = load_dataset(dataset, seed=RunConfig.from_dict(configs[0]).effective_data_seed,
                        **configs[0]["dataset_params"])
    if data.input_shape == (2,) and data.num_classes is not None:
        paths["figure"] = _plot_boundaries(data, [c for c in configs if c["seed"] == 0], model_dir, rows,
                                           out / "decision_boundaries.png")
    return {"summary": summary, "text": text, "paths": paths}


def _plot_boundaries(data, configs: list[dict], model_dir: Path, rows, path: Path) -> Path:
    from .plots import plot_decision_boundaries

    errors = {r["key"]: r["metrics"]["test_error"] for r in rows if "test_error" in r["metrics"]}
    predict_fns, test_errors = {}, {}
    for config in configs:
        if config_key(config) not in errors:  # diverged: no boundary to draw
            continue
        model = build_model(config["model"], input_shape=data.input_shape, num_outputs=data.num_classes,
                            **config["model_params"])
        model.load_state_dict(torch.load(Path(model_dir) / f"{config_key(config)}.pt", weights_only=True))
        model.eval()
        predict_fns[config["method"]] = probability_fn(model)
        test_errors[config["method"]] = 100 * errors[config_key(config)]  # the panel titles show percent
    plot_decision_boundaries(data.x_train.numpy(), data.y_train.numpy(), predict_fns, path, test_errors=test_errors,
                             title=f"Decision boundaries on {data.name} (seed 0)")
    return path


def takeaway(rows: list[dict], dataset: str) -> str:
    """One sentence on what the table shows, decided by paired 95% CIs of test error (no paper; a reading aid).

    Says only what the numbers support: which method is best (or that the best are tied), whether Mixup
    is worse than plain training (on interleaved 2-D classes: manifold intrusion, Mixup's segments
    crossing the other class), and whether Local Mixup / k-Mixup recover from it.
    """
    from .reproduce.base import paired_below

    errors: dict[str, dict[int, float]] = {}
    for row in rows:
        errors.setdefault(row["config"]["method"], {})[row["config"]["seed"]] = 100 * row["metrics"]["test_error"]
    if len(errors) < 2 or min(len(e) for e in errors.values()) < 2:
        return ""
    seeds = sorted(set.intersection(*(set(e) for e in errors.values())))
    err = {m: [e[s] for s in seeds] for m, e in errors.items()}
    means = {m: sum(v) / len(v) for m, v in err.items()}
    best = min(means, key=means.get)
    tied = [m for m in err if m != best and not paired_below(err[best], err[m])]
    parts = [f"Lowest mean test error: {best} ({means[best]:.2f} %)"
             + (f", not separable from {', '.join(tied)} by paired 95% CIs" if tied else
                ", below every other method by paired 95% CIs")]
    if "mixup" in err and "erm" in err and paired_below(err["erm"], err["mixup"]):
        repaired = [m for m in ("local_mixup", "kmixup") if m in err and paired_below(err[m], err["mixup"])]
        gap = means["mixup"] - means["erm"]
        intrusion = (": its mixed points between the interleaved arms land in the other class (manifold "
                     "intrusion)" if dataset == "spirals" else "")
        recovered = " and ".join(f"{100 * (means['mixup'] - means[m]) / gap:.0f} % of it with {m}" for m in repaired)
        parts.append(f"Mixup is worse than plain training ({means['mixup']:.2f} % vs {means['erm']:.2f} %)"
                     + intrusion
                     + (f"; mixing mostly near neighbours recovers part of that gap ({recovered})" if repaired else ""))
        if best == "erm" and not tied:
            parts.append("on this clean data plain training wins")
    return "; ".join(parts) + "."
