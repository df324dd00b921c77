"""Closed forms and simulations of the papers' theory (no plotting here; see vicinal.lab).

- :mod:`vicinal.theory.local_1d`: Local Mixup in dimension 1 (Baena et al. 2022, Sec. III, IV-B).
- :mod:`vicinal.theory.clusters`: k-Mixup on clustered data (Greenewald et al. 2023, Sec. 3.2, 4).
- :mod:`vicinal.theory.lipschitz`: Lipschitz lower bound Q(D) (Baena et al. 2022, Sec. V-B).
"""

from vicinal.theory.clusters import (
    CrossClusterTrial,
    cross_cluster_bound,
    exact_cross_cluster_fraction,
    fit_power_law,
    matching_distribution,
    optimal_matching,
    predicted_cross_cluster_matches,
    sample_separated_clusters,
    simulate_cross_cluster_matches,
)
from vicinal.theory.lipschitz import lipschitz_lower_bound, lipschitz_lower_bound_curve, mixed_training_set
from vicinal.theory.local_1d import (
    BiasVariance,
    IidVariance,
    best_linear_fit,
    bias_variance_periodic,
    iid_variance,
    iid_weights,
    mixup_minimizer_1d,
    mixup_minimizer_numeric_1d,
    periodic_frequency_response,
    periodic_minimizer,
    periodic_minimizer_numeric,
)

__all__ = [
    "BiasVariance",
    "CrossClusterTrial",
    "IidVariance",
    "best_linear_fit",
    "bias_variance_periodic",
    "cross_cluster_bound",
    "exact_cross_cluster_fraction",
    "fit_power_law",
    "iid_variance",
    "iid_weights",
    "lipschitz_lower_bound",
    "lipschitz_lower_bound_curve",
    "matching_distribution",
    "mixed_training_set",
    "mixup_minimizer_1d",
    "mixup_minimizer_numeric_1d",
    "optimal_matching",
    "periodic_frequency_response",
    "periodic_minimizer",
    "periodic_minimizer_numeric",
    "predicted_cross_cluster_matches",
    "sample_separated_clusters",
    "simulate_cross_cluster_matches",
]
