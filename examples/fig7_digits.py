"""Carratino et al. 2020, Fig. 7 at laptop scale: confidence of ERM, label smoothing, Mixup, approximate Mixup.

The paper trains LeNet on CIFAR-10 (``vicinal reproduce carratino-fig7-cifar10-lenet --data-dir DIR``);
this check uses scikit-learn's digits, which ship offline: LeNet, SGD lr 0.05 (momentum 0.9, weight decay
5e-4), 40 epochs, batch 128, 5 seeds. It prints each row's mean confidence, error and summed confidence
histogram, and the paired differences of mean confidence behind the figure's ordering.

    python examples/fig7_digits.py          # about 40 s on 2 CPU cores
"""

import numpy as np

from vicinal.lab.reproduce.base import paired_ci
from vicinal.lab.trainer import train

BASE = dict(dataset="digits", model="lenet", optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4,
            epochs=40, batch_size=128, eval_rescaled=False, n_bins=10)
ROWS = {"ERM": dict(method="erm"), "ERM + LS 0.1": dict(method="erm", label_smoothing=0.1),
        "Mixup": dict(method="mixup", alpha=1.0),
        "approx Mixup": dict(method="approx_mixup", alpha=1.0, approx_estimator="stochastic")}
SEEDS = 5


def main() -> None:
    runs = {name: [train(dict(BASE, **settings, seed=seed)) for seed in range(SEEDS)] for name, settings in ROWS.items()}
    confidence = {name: [r["test_mean_confidence"] for r in rows] for name, rows in runs.items()}
    for name, rows in runs.items():
        histogram = np.sum([r["test_confidence_histogram"] for r in rows], axis=0)
        print(f"{name:14s} mean confidence {100 * np.mean(confidence[name]):.1f} %, "
              f"error {100 * np.mean([r['test_error'] for r in rows]):.1f} %, histogram {histogram.tolist()}")
    for a, b in (("Mixup", "ERM + LS 0.1"), ("ERM + LS 0.1", "ERM"), ("approx Mixup", "ERM")):
        mean, half = paired_ci(confidence[a], confidence[b])
        print(f"{a} - {b}: {100 * mean:+.2f} ± {100 * half:.2f} points of mean confidence (paired, 95% CI)")


if __name__ == "__main__":
    main()
