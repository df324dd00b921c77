"""Per-epoch training curves, one panel per quantity, mean over seeds with a 95% CI band (k-Mixup Fig. 6)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from .style import (
    _PathLike, _capitalise, _draw_mean_band, _figure, _float_array, _mapping, _png_path, _save, method_colors,
    method_label,
)

__all__ = ["plot_curves"]


def plot_curves(
    curves: Mapping[str, Mapping[str, np.ndarray]],
    path: _PathLike,
    *,
    title: str | None = None,
    dpi: int = 100,
) -> Figure:
    """Plot per-epoch training curves, mean over seeds with a 95% CI band.

    Reproduces k-Mixup (Greenewald et al., 2023) Fig. 6 (train/test accuracy of k = 1 and
    k = 32 over epochs): one panel per quantity (e.g. "train loss", "train accuracy (%)"),
    one line per method, epochs numbered from 1.

    Parameters
    ----------
    curves : mapping of str to mapping of str to array
        Panel name (the y-axis label, with its unit) to a mapping from method key to values
        of shape ``(n_seeds, n_epochs)``. Methods may differ in ``n_seeds`` and ``n_epochs``.
    path : str or os.PathLike
        Output ``.png`` file; missing parent directories are created.
    title : str, optional
        Figure title; by default "Training curves".
    dpi : int, default 100
        Resolution; the PNG is ``(4.6 n_panels + 0.4) x 4.0`` inches times `dpi` pixels.

    Returns
    -------
    matplotlib.figure.Figure
        The saved figure.

    Raises
    ------
    ValueError
        If a panel or a curve is empty, not 2-D or not finite.
    TypeError
        If `curves` or a panel is not a mapping.
    """
    png = _png_path(path)
    panels = {name: _panel_curves(name, methods) for name, methods in _mapping("curves", curves).items()}
    colors = method_colors(list(dict.fromkeys(key for methods in panels.values() for key in methods)))

    fig = _figure(4.6 * len(panels) + 0.4, 4.0, dpi)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, methods) in zip(axes, panels.items()):
        for key, samples in methods.items():
            epochs = np.arange(1, samples.shape[1] + 1)
            _draw_mean_band(ax, epochs, samples, colors[key], method_label(key), marker=None)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title(_capitalise(name))
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=9)
    fig.suptitle(title or "Training curves (mean over seeds, 95% CI)")
    return _save(fig, png)


def _panel_curves(name: str, methods: object) -> dict[str, np.ndarray]:
    panel = _mapping(f"curves[{name!r}]", methods)
    return {key: _float_array(f"curves[{name!r}][{key!r}]", values, ndim=2) for key, values in panel.items()}
