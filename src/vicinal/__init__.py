"""vicinal: locality-aware mixup for PyTorch.

Mixup (Zhang et al. 2018), Local Mixup (Baena et al. 2022), k-Mixup (Greenewald et al. 2023) and
the rescaled prediction of "On Mixup Regularization" (Carratino et al. 2020), as composable parts:
a lambda draw, a pairing, an optional locality graph, and a weighted soft-target loss.
"""

from . import lightning, metrics, seeding
from .alpha import AlphaCalibration, calibrate_alpha, perturbation_rms
from .approx import approximate_mixup_loss, mixup_regularizers, perturbation_covariance
from .batch import MixedBatch, interpolate
from .collate import MixCollate
from .eps import calibrate_eps
from .graphs import KNN, Exponential, LocalityGraph, NoPairsKeptWarning, Threshold, pairwise_distances
from .lam import sample_lam
from .losses import mixup_loss, reduce_weighted, soft_cross_entropy, squared_error
from .mixers import CutMix, KMixup, LocalMixup, Mixer, Mixup
from .moments import theta_bar, truncated_beta_variance
from .pairing import GraphPairing, OptimalTransportPairing, RandomPairing, UniformPairing
from .rescale import RescaledPredictor, TrainingStats, fit_stats, modified_data
from .targets import dense_targets
from .timm_args import from_timm

__version__ = "0.2.0"

__all__ = [
    "KMixup", "LocalMixup", "Mixer", "Mixup", "CutMix", "from_timm", "MixedBatch", "MixCollate",
    "KNN", "Exponential", "LocalityGraph", "Threshold", "pairwise_distances", "NoPairsKeptWarning", "calibrate_eps",
    "GraphPairing", "OptimalTransportPairing", "RandomPairing", "UniformPairing",
    "sample_lam", "interpolate", "dense_targets",
    "mixup_loss", "reduce_weighted", "soft_cross_entropy", "squared_error",
    "AlphaCalibration", "calibrate_alpha", "perturbation_rms",
    "theta_bar", "truncated_beta_variance",
    "TrainingStats", "fit_stats", "modified_data", "RescaledPredictor",
    "approximate_mixup_loss", "mixup_regularizers", "perturbation_covariance",
    "metrics", "lightning", "seeding",
    "__version__",
]
