"""How far each Local Mixup estimator is from eq. 2 (Baena et al. 2022) on a small batch.

Eq. 2 over a batch: E_lambda[(1/B^2) sum_{i,j} W_ij l(f(lam x_i + (1-lam) x_j), lam y_i + (1-lam) y_j)],
diagonal included. This script evaluates it by brute force (every pair, Gauss-Jacobi quadrature over
lambda, float64) for a fixed linear model, then averages each estimator over many seeds:

* the random cycle (never self: Local Mixup "uniform" before vicinal 0.3),
* uniform sampling with self (``LocalMixup(sampling="uniform")``),
* weighted sampling (``LocalMixup(sampling="weighted")``).

    python examples/local_mixup_bias.py [--seeds 2000]
"""

import argparse

import numpy as np
import torch
from scipy import special

import vicinal as v
from vicinal.graphs import off_diagonal

B, C, ALPHA = 8, 3, 1.0


def brute_force(x, y, weight, w_matrix, alpha=ALPHA, nodes=80):
    t, w = special.roots_jacobi(nodes, alpha - 1, alpha - 1)
    lam, lam_w = (1 + t) / 2, w / w.sum()
    xn, a, onehot = x.numpy(), weight.numpy(), np.eye(C)[y.numpy()]
    l3 = lam[:, None, None, None]
    z = (l3 * xn[None, :, None] + (1 - l3) * xn[None, None, :]) @ a
    t_mix = l3 * onehot[None, :, None] + (1 - l3) * onehot[None, None, :]
    loss = -(t_mix * (z - special.logsumexp(z, axis=-1, keepdims=True))).sum(-1)
    return float((w_matrix.numpy() * np.tensordot(lam_w, loss, axes=1)).sum() / B ** 2)


def estimate(mixer, x, y, weight, seeds):
    g = torch.Generator().manual_seed(1)
    values = np.array([float(v.mixup_loss(b.inputs @ weight, b)) for b in (mixer(x, y, generator=g) for _ in range(seeds))])
    return values.mean(), 1.96 * values.std(ddof=1) / np.sqrt(seeds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2000)
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(B, 2, generator=g, dtype=torch.float64)
    y = torch.randint(0, C, (B,), generator=g)
    weight = torch.randn(2, C, generator=g, dtype=torch.float64)
    distances = off_diagonal(v.pairwise_distances(x), same_set=True)
    for label, graph in [("threshold keeping 25 % of pairs", v.Threshold(eps=float(torch.quantile(distances, 0.25)))),
                         ("threshold eps = 0 (plain training)", v.Threshold(eps=0.0))]:
        truth = brute_force(x, y, weight, graph.matrix(x))
        print(f"{label}: eq. 2 (brute force) = {truth:.4f}")
        for name, mixer in [("random cycle, no self (old uniform)", v.Mixer(alpha=ALPHA, pairing=v.RandomPairing(), graph=graph, num_classes=C)),
                            ("uniform with self", v.LocalMixup(alpha=ALPHA, graph=graph, num_classes=C)),
                            ("weighted", v.LocalMixup(alpha=ALPHA, graph=graph, sampling="weighted", num_classes=C))]:
            mean, ci = estimate(mixer, x, y, weight, args.seeds)
            print(f"  {name:38s} E[loss] = {mean:.4f} +- {ci:.4f}  (bias {mean - truth:+.4f})")


if __name__ == "__main__":
    main()
