"""Local Mixup in 1-D: real_line.py has Sec. III and Thm IV.3 (any inputs); integer_line.py has Sec. IV-B (kNN on Z).

Every public name is re-exported here, so ``from vicinal.theory.local_1d import periodic_minimizer`` works.
"""

from .integer_line import (
    BiasVariance,
    IidVariance,
    bias_variance_periodic,
    iid_variance,
    iid_weights,
    periodic_frequency_response,
    periodic_minimizer,
    periodic_minimizer_numeric,
)
from .real_line import best_linear_fit, mixup_minimizer_1d, mixup_minimizer_numeric_1d

__all__ = [
    "BiasVariance",
    "IidVariance",
    "bias_variance_periodic",
    "best_linear_fit",
    "iid_variance",
    "iid_weights",
    "mixup_minimizer_1d",
    "mixup_minimizer_numeric_1d",
    "periodic_frequency_response",
    "periodic_minimizer",
    "periodic_minimizer_numeric",
]
