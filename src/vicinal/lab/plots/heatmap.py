"""A k x alpha grid of mean values with the numbers in the cells and the best cell outlined (k-Mixup Tables 2 and 9)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .style import _PathLike, _capitalise, _check_int, _figure, _float_array, _png_path, _save

__all__ = ["plot_heatmap"]


def plot_heatmap(
    k_values: Sequence[int],
    alpha_values: Sequence[float],
    means: np.ndarray,
    path: _PathLike,
    *,
    ci_half_widths: np.ndarray | None = None,
    metric_name: str = "test error (%)",
    lower_is_better: bool = True,
    decimals: int = 2,
    title: str | None = None,
    dpi: int = 100,
) -> Figure:
    """Plot a k x alpha grid of mean values with the numbers written in the cells.

    Reproduces k-Mixup (Greenewald et al., 2023) Tables 2 and 9 as a heatmap: rows are the
    k-Mixup block size ``k``, columns the Beta parameter ``alpha``. The best cell is
    outlined and its number set in bold.

    Parameters
    ----------
    k_values : sequence of int
        Block sizes, one per row, shape ``(n_k,)``.
    alpha_values : sequence of float
        Beta parameters, one per column, shape ``(n_alpha,)``.
    means : array of shape (n_k, n_alpha)
        Mean metric per cell. NaN marks a cell that was not run; it is drawn grey with "n/a".
    path : str or os.PathLike
        Output ``.png`` file; missing parent directories are created.
    ci_half_widths : array of shape (n_k, n_alpha), optional
        Half-widths of the 95% CIs, written under the means as "±0.02".
    metric_name : str, default "test error (%)"
        Colour bar label, with its unit.
    lower_is_better : bool, default True
        Which end of the scale is best: picks the best cell, and maps it to the dark end of
        the colour map.
    decimals : int, default 2
        Digits after the decimal point in the cell texts (k-Mixup's tables use 2).
    title : str, optional
        Figure title; by default "<metric> over k and alpha".
    dpi : int, default 100
        Resolution; the PNG is ``(1.1 n_alpha + 2.4) x (0.55 n_k + 1.7)`` inches times `dpi`
        pixels, at least ``4.8 x 3.2`` inches.

    Returns
    -------
    matplotlib.figure.Figure
        The saved figure.

    Raises
    ------
    ValueError
        If the grid shape does not match ``(len(k_values), len(alpha_values))``, every cell
        is NaN, a value is infinite, a CI half-width is negative or missing where a mean is
        given, or `decimals` is negative.
    TypeError
        If `path` is not a path, an array is not numeric, or `decimals` is not an int.
    """
    png = _png_path(path)
    ks = _float_array("k_values", k_values, ndim=1)
    alphas = _float_array("alpha_values", alpha_values, ndim=1)
    grid = _grid("means", means, (len(ks), len(alphas)))
    if np.isnan(grid).all():
        raise ValueError("means has no finite value; expected at least one cell that was run")
    half_widths = None if ci_half_widths is None else _grid_half_widths(ci_half_widths, grid)
    decimals = _check_int("decimals", decimals)
    if decimals < 0:
        raise ValueError(f"decimals must be >= 0, got {decimals}")

    width = max(4.8, 1.1 * len(alphas) + 2.4)
    height = max(3.2, 0.55 * len(ks) + 1.7)
    fig = _figure(width, height, dpi)
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps["viridis" if lower_is_better else "viridis_r"].with_extremes(bad="#d9d9d9")
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, aspect="auto")
    low, high = np.nanmin(grid), np.nanmax(grid)
    if low == high:  # one value everywhere (e.g. 0 % error): matplotlib would centre a range on it, below 0
        image.set_clim(low, low + (abs(low) or 1.0))
    _write_cell_texts(ax, grid, half_widths, image, lower_is_better, decimals)
    ax.set_xticks(range(len(alphas)), [f"{a:g}" for a in alphas])
    ax.set_yticks(range(len(ks)), [f"{k:g}" for k in ks])
    ax.set_xlabel("α (Beta parameter)")
    ax.set_ylabel("k (k-Mixup block size)")
    ax.set_title(title or f"{_capitalise(metric_name)} over k and α (best outlined)")
    fig.colorbar(image, ax=ax, label=metric_name)
    return _save(fig, png)


def _grid(name: str, values: object, shape: tuple[int, int]) -> np.ndarray:
    grid = _float_array(name, values, ndim=2, allow_nan=True)
    if grid.shape != shape:
        raise ValueError(f"{name} must have shape (len(k_values), len(alpha_values)) = {shape}, got {grid.shape}")
    return grid


def _grid_half_widths(ci_half_widths: object, grid: np.ndarray) -> np.ndarray:
    half_widths = _grid("ci_half_widths", ci_half_widths, grid.shape)
    run = ~np.isnan(grid)
    if np.isnan(half_widths[run]).any() or (half_widths[run] < 0).any():
        bad = half_widths[run][np.isnan(half_widths[run]) | (half_widths[run] < 0)][0]
        raise ValueError(f"ci_half_widths must be >= 0 in every cell with a mean, got {bad}")
    return half_widths


def _write_cell_texts(ax, grid: np.ndarray, half_widths: np.ndarray | None, image, lower_is_better: bool,
                      decimals: int) -> None:
    best = np.nanargmin(grid) if lower_is_better else np.nanargmax(grid)
    best_row, best_col = np.unravel_index(best, grid.shape)
    for row, col in np.ndindex(grid.shape):
        value = grid[row, col]
        if np.isnan(value):
            ax.text(col, row, "n/a", ha="center", va="center", color="#555555", fontsize=9)
            continue
        text = f"{value:.{decimals}f}"
        if half_widths is not None:
            text += f"\n±{half_widths[row, col]:.{decimals}f}"
        is_best = (row, col) == (best_row, best_col)
        ax.text(col, row, text, ha="center", va="center", fontsize=9, linespacing=1.1,
                color=_text_color_on(image.cmap(image.norm(value))), fontweight="bold" if is_best else "normal")
    ax.add_patch(Rectangle((best_col - 0.5, best_row - 0.5), 1, 1, fill=False, edgecolor="#e41a1c", linewidth=2.5))


def _text_color_on(rgba: tuple[float, float, float, float]) -> str:
    red, green, blue = rgba[:3]
    luminance = 0.299 * red + 0.587 * green + 0.114 * blue
    return "black" if luminance > 0.5 else "white"
