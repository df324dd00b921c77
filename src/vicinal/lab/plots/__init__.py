"""Paper-style figures from plain arrays: style.py (colours, names, checks, saving), then one module per figure."""

from .decision_boundaries import plot_decision_boundaries
from .heatmap import plot_heatmap
from .matching_distribution import plot_matching_distribution
from .metric_vs_param import plot_metric_vs_param
from .reliability import plot_confidence_histograms, plot_reliability
from .series import plot_series
from .style import METHOD_COLORS, METHOD_LABELS, method_colors, method_label
from .training_curves import plot_curves

__all__ = [
    "METHOD_COLORS",
    "METHOD_LABELS",
    "method_label",
    "method_colors",
    "plot_metric_vs_param",
    "plot_heatmap",
    "plot_decision_boundaries",
    "plot_reliability",
    "plot_confidence_histograms",
    "plot_curves",
    "plot_series",
    "plot_matching_distribution",
]
