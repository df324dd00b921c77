"""Tests for vicinal.lab.plots: each plot writes a readable PNG of the expected size, shows
the data it was given, and rejects bad input with a message naming the bad value."""

import os
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest
from scipy import stats

from vicinal.lab import plots
from vicinal.lab.plots import style

DPI = 40  # small images keep the suite fast


def assert_png_matches_figure(path, fig):
    """The file is a non-empty PNG whose pixel size is the figure's inches times dpi."""
    assert path.stat().st_size > 0
    pixels = matplotlib.image.imread(path)
    width, height = fig.get_size_inches() * fig.dpi
    assert pixels.shape[:2] == (round(height), round(width))
    assert pixels[..., :3].std() > 0.01, "the image is blank"


def legend_texts(ax):
    return [text.get_text() for text in ax.get_legend().get_texts()]


def all_texts(fig):
    return [text.get_text() for ax in fig.axes for text in ax.texts]


def titles(fig):
    return [ax.get_title() for ax in fig.axes]


# ---------------------------------------------------------------- method colours and names


def test_method_label_known_and_unknown():
    assert plots.method_label("local_mixup") == "Local Mixup"
    assert plots.method_label("kmixup") == "k-Mixup"
    assert plots.method_label("my_method") == "my_method"


def test_method_label_rejects_non_string():
    with pytest.raises(TypeError, match="method key must be a str"):
        plots.method_label(3)


def test_known_method_colour_is_the_same_in_every_figure():
    alone = plots.method_colors(["mixup"])
    together = plots.method_colors(["erm", "kmixup", "mixup", "local_mixup"])
    assert alone["mixup"] == together["mixup"] == plots.METHOD_COLORS["mixup"]


def test_all_known_methods_have_distinct_colours():
    colors = plots.method_colors(list(plots.METHOD_COLORS))
    assert len(set(colors.values())) == len(plots.METHOD_COLORS)


def test_unknown_methods_get_further_distinct_colours_independent_of_companions():
    first = plots.method_colors(["mixup", "new_a"])
    second = plots.method_colors(["erm", "kmixup", "new_a"])
    assert first["new_a"] == second["new_a"]
    assert first["new_a"] not in plots.METHOD_COLORS.values()
    many = plots.method_colors(["new_a", "new_b", "new_c", "new_d"])
    assert len(set(many.values())) == 4


def test_importing_plots_selects_a_non_interactive_backend():
    # Load the module that selects the backend (every figure module imports it) alone, so the
    # subprocess does not pay for importing torch via vicinal/__init__.
    code = (
        "import importlib.util, matplotlib\n"
        f"spec = importlib.util.spec_from_file_location('style', {style.__file__!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(matplotlib.get_backend())"
    )
    interactive_by_default = os.environ | {"MPLBACKEND": "TkAgg"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env=interactive_by_default)
    assert result.stdout.strip().lower() == "agg"


# ---------------------------------------------------------------- plot_metric_vs_param

EPS = [0.25, 0.5, 1.0, 2.0]


def metric_samples():
    rng = np.random.default_rng(0)
    return {"local_mixup": 5 + rng.normal(0, 0.3, (6, len(EPS)))}


def test_metric_vs_param_writes_png_with_lines_references_and_ci(tmp_path):
    samples = metric_samples()
    references = {"erm": [10.0, 10.4, 9.8], "mixup": [7.0, 7.2, 7.1]}
    path = tmp_path / "metric.png"
    fig = plots.plot_metric_vs_param(EPS, samples, path, references=references, log_x=True, dpi=DPI)
    assert_png_matches_figure(path, fig)
    ax = fig.axes[0]
    assert legend_texts(ax) == ["ERM (reference)", "Mixup (reference)", "Local Mixup"]
    assert ax.get_xscale() == "log"
    assert [label.get_text() for label in ax.get_xticklabels()] == ["0.25", "0.5", "1", "2"]
    local_line = ax.get_lines()[-1]
    np.testing.assert_allclose(local_line.get_ydata(), samples["local_mixup"].mean(axis=0))
    assert local_line.get_color() == plots.METHOD_COLORS["local_mixup"]
    band = ax.collections[-1].get_paths()[0].vertices[:, 1]
    n_seeds = samples["local_mixup"].shape[0]
    half_width = stats.t.ppf(0.975, n_seeds - 1) * samples["local_mixup"].std(axis=0, ddof=1) / np.sqrt(n_seeds)
    np.testing.assert_allclose(band.max(), (samples["local_mixup"].mean(axis=0) + half_width).max())


def test_metric_vs_param_single_seed_has_no_band(tmp_path):
    fig = plots.plot_metric_vs_param(EPS, {"mixup": [[1.0, 2.0, 3.0, 4.0]]}, tmp_path / "one.png", dpi=DPI)
    assert len(fig.axes[0].collections) == 0


def test_metric_vs_param_creates_missing_directories(tmp_path):
    path = tmp_path / "a" / "b" / "metric.png"
    plots.plot_metric_vs_param(EPS, metric_samples(), path, dpi=DPI)
    assert path.is_file()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"samples": {"mixup": np.ones((3, 2))}}, ValueError, r"shape \(n_seeds, 4\)"),
        ({"samples": {"mixup": np.ones(4)}}, ValueError, "must be 2-D"),
        ({"samples": {}}, ValueError, "samples is empty"),
        ({"samples": [np.ones((2, 4))]}, TypeError, "samples must be a mapping"),
        ({"samples": {"mixup": np.full((2, 4), np.nan)}}, ValueError, "must be finite, got nan"),
        ({"param_values": []}, ValueError, "param_values is empty"),
        ({"param_values": [0.0, 1, 2, 3], "log_x": True}, ValueError, "param_values must be > 0 on a log axis, got 0"),
        ({"references": {"erm": []}}, ValueError, r"references\['erm'\] is empty"),
        ({"path": "metric.pdf"}, ValueError, "must end in '.png', got 'metric.pdf'"),
    ],
)
def test_metric_vs_param_rejects_bad_input(tmp_path, kwargs, error, message):
    arguments = {"param_values": EPS, "samples": metric_samples(), "path": tmp_path / "bad.png"} | kwargs
    with pytest.raises(error, match=message):
        plots.plot_metric_vs_param(arguments.pop("param_values"), arguments.pop("samples"), arguments.pop("path"),
                                   dpi=DPI, **arguments)
    assert not (tmp_path / "bad.png").exists()


# ---------------------------------------------------------------- plot_heatmap

K_VALUES = [1, 2, 4]
ALPHA_VALUES = [0.1, 1.0]
MEANS = np.array([[0.80, 0.90], [0.70, np.nan], [0.75, 0.66]])


def test_heatmap_writes_numbers_ci_and_marks_best_cell(tmp_path):
    path = tmp_path / "heat.png"
    half_widths = np.where(np.isnan(MEANS), np.nan, 0.02)  # cells not run need no CI
    fig = plots.plot_heatmap(K_VALUES, ALPHA_VALUES, MEANS, path, ci_half_widths=half_widths, dpi=DPI)
    assert_png_matches_figure(path, fig)
    texts = fig.axes[0].texts
    assert [text.get_text() for text in texts] == ["0.80\n±0.02", "0.90\n±0.02", "0.70\n±0.02", "n/a",
                                                   "0.75\n±0.02", "0.66\n±0.02"]
    bold = [text.get_text() for text in texts if text.get_fontweight() == "bold"]
    assert bold == ["0.66\n±0.02"]
    assert [label.get_text() for label in fig.axes[0].get_yticklabels()] == ["1", "2", "4"]
    assert fig.axes[1].get_ylabel() == "test error (%)"  # colour bar


def test_heatmap_higher_is_better_marks_the_maximum(tmp_path):
    fig = plots.plot_heatmap(K_VALUES, ALPHA_VALUES, MEANS, tmp_path / "acc.png", lower_is_better=False,
                             metric_name="accuracy (%)", dpi=DPI)
    bold = [text.get_text() for text in fig.axes[0].texts if text.get_fontweight() == "bold"]
    assert bold == ["0.90"]


def test_heatmap_decimals(tmp_path):
    fig = plots.plot_heatmap(K_VALUES, ALPHA_VALUES, MEANS, tmp_path / "d.png", decimals=1, dpi=DPI)
    assert [text.get_text() for text in fig.axes[0].texts] == ["0.8", "0.9", "0.7", "n/a", "0.8", "0.7"]
    with pytest.raises(ValueError, match="decimals must be >= 0, got -1"):
        plots.plot_heatmap(K_VALUES, ALPHA_VALUES, MEANS, tmp_path / "d.png", decimals=-1, dpi=DPI)
    with pytest.raises(TypeError, match="decimals must be an int, got 1.5 of type float"):
        plots.plot_heatmap(K_VALUES, ALPHA_VALUES, MEANS, tmp_path / "d.png", decimals=1.5, dpi=DPI)


@pytest.mark.parametrize(
    ("means", "ci", "message"),
    [
        (np.ones((2, 2)), None, r"means must have shape .* = \(3, 2\), got \(2, 2\)"),
        (np.full((3, 2), np.nan), None, "means has no finite value"),
        (MEANS, np.ones((3, 3)), r"ci_half_widths must have shape .* got \(3, 3\)"),
        (np.ones(6), None, "means must be 2-D"),
        (MEANS, np.full((3, 2), -0.1), "ci_half_widths must be >= 0 in every cell with a mean, got -0.1"),
        (MEANS, np.where(np.isnan(MEANS), 0.1, np.nan), "ci_half_widths must be >= 0 .* got nan"),
    ],
)
def test_heatmap_rejects_bad_input(tmp_path, means, ci, message):
    with pytest.raises(ValueError, match=message):
        plots.plot_heatmap(K_VALUES, ALPHA_VALUES, means, tmp_path / "bad.png", ci_half_widths=ci, dpi=DPI)


# ---------------------------------------------------------------- plot_decision_boundaries


def two_class_data():
    rng = np.random.default_rng(1)
    points = rng.normal(size=(60, 2))
    return points, (points[:, 0] > 0).astype(int)


def linear_predict(inputs):
    p_one = 1 / (1 + np.exp(-3 * inputs[:, 0]))
    return np.column_stack([1 - p_one, p_one])


def test_decision_boundaries_panels_titles_and_float32_grid(tmp_path):
    points, labels = two_class_data()
    received = []

    def recording_predict(inputs):
        received.append(inputs)
        return linear_predict(inputs)

    path = tmp_path / "boundaries.png"
    fig = plots.plot_decision_boundaries(points, labels, {"erm": linear_predict, "kmixup": recording_predict}, path,
                                         test_errors={"erm": 5.25, "kmixup": 3.1}, grid_size=30, dpi=DPI)
    assert_png_matches_figure(path, fig)
    assert received[0].dtype == np.float32 and received[0].shape == (30 * 30, 2)
    low, high = received[0].min(axis=0), received[0].max(axis=0)
    assert (low < points.min(axis=0)).all() and (high > points.max(axis=0)).all()
    assert "ERM\ntest error 5.2%" in titles(fig) and "k-Mixup\ntest error 3.1%" in titles(fig)
    assert fig.axes[-1].get_ylabel() == "P(class 1)"


def test_decision_boundaries_three_classes_have_no_colour_bar(tmp_path):
    rng = np.random.default_rng(2)
    points = rng.normal(size=(30, 2))
    labels = np.arange(30) % 3

    def uniform(inputs):
        return np.full((len(inputs), 3), 1 / 3)

    path = tmp_path / "three.png"
    fig = plots.plot_decision_boundaries(points, labels, {"mixup": uniform, "new_method": uniform}, path,
                                         grid_size=20, dpi=DPI)
    assert_png_matches_figure(path, fig)
    assert len(fig.axes) == 2
    assert titles(fig) == ["Mixup", "new_method"]


@pytest.mark.parametrize(
    ("predict", "extra", "error", "message"),
    [
        (lambda x: np.ones((len(x), 3)) / 3, {}, None, None),
        (lambda x: np.ones(len(x)), {}, ValueError, r"predict_fns\['erm'\] must return probabilities of shape"),
        (lambda x: 5 * linear_predict(x), {}, ValueError, r"probabilities in \[0, 1\].*apply softmax"),
        ("not callable", {}, TypeError, r"predict_fns\['erm'\] must be callable, got str"),
        (linear_predict, {"test_errors": {}}, ValueError, "test_errors is empty"),
        (linear_predict, {"test_errors": {"other": 1.0}}, ValueError, r"no entry for method\(s\) \['erm'\]"),
        (linear_predict, {"test_errors": {"erm": 0.3e3}}, ValueError, r"percentage in \[0, 100\], got 300"),
        (linear_predict, {"grid_size": 3}, ValueError, "grid_size must be >= 10, got 3"),
        (linear_predict, {"grid_size": 20.0}, TypeError, "grid_size must be an int, got 20.0 of type float"),
    ],
)
def test_decision_boundaries_checks_predict_functions_and_options(tmp_path, predict, extra, error, message):
    points, labels = two_class_data()
    call = lambda: plots.plot_decision_boundaries(points, labels, {"erm": predict}, tmp_path / "b.png",  # noqa: E731
                                                  dpi=DPI, **({"grid_size": 12} | extra))
    if error is None:  # more output classes than seen in training is allowed
        call()
        return
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize(
    ("points", "labels", "message"),
    [
        (np.ones((5, 3)), np.array([0, 1, 0, 1, 0]), r"x_train must have shape \(n_samples, 2\), got \(5, 3\)"),
        (np.ones((5, 2)), np.array([0, 1, 0]), "y_train has length 3 but x_train has length 5"),
        (np.ones((3, 2)), np.array([0, 1.5, 0]), "non-negative integer class labels, got 1.5"),
        (np.ones((3, 2)), np.array([1, 1, 1]), "single class 1; expected at least two"),
        (np.ones((0, 2)), np.array([]), "x_train is empty"),
    ],
)
def test_decision_boundaries_rejects_bad_data(tmp_path, points, labels, message):
    with pytest.raises(ValueError, match=message):
        plots.plot_decision_boundaries(points, labels, {"erm": linear_predict}, tmp_path / "b.png", dpi=DPI)


# ---------------------------------------------------------------- plot_reliability


def reliability_bins(accuracy_shift):
    edges = np.linspace(0, 1, 5)
    confidence = np.array([np.nan, 0.4, 0.6, 0.9])
    return {
        "bin_edges": edges,
        "confidence": confidence,
        "accuracy": confidence - accuracy_shift,
        "counts": np.array([0, 10, 30, 60]),
    }


def test_reliability_titles_report_ece_and_layout(tmp_path):
    path = tmp_path / "reliability.png"
    models = {"erm": reliability_bins(0.1), "rescaled": reliability_bins(0.0)}
    fig = plots.plot_reliability(models, path, dpi=DPI)
    assert_png_matches_figure(path, fig)
    assert titles(fig)[:2] == ["ERM\nECE 10.0%", "Rescaled Mixup\nECE 0.0%"]
    assert len(fig.axes) == 4  # reliability diagram and histogram per model
    assert "perfect calibration" in legend_texts(fig.axes[0])
    histogram_heights = [patch.get_height() for patch in fig.axes[2].patches]
    np.testing.assert_allclose(histogram_heights, [0.0, 0.1, 0.3, 0.6])


def test_reliability_accepts_plain_lists(tmp_path):
    model = {"bin_edges": [0.0, 0.5, 1.0], "confidence": [0.3, 0.8], "accuracy": [0.25, 0.9], "counts": [4, 6]}
    fig = plots.plot_reliability({"mixup": model}, tmp_path / "lists.png", dpi=DPI)
    assert titles(fig)[0] == "Mixup\nECE 8.0%"  # 0.4 * 0.05 + 0.6 * 0.1


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"counts": None}, ValueError, r"lacks key\(s\) \['counts'\]"),
        ({"counts": [1, 2, 3]}, ValueError, r"counts'\] has length 3 but bin_edges minus one has length 4"),
        ({"counts": [0, 0, 0, 0]}, ValueError, "positive total"),
        ({"counts": [-1, 1, 1, 1]}, ValueError, "must be >= 0"),
        ({"bin_edges": [0, 0.5, 0.4, 0.8, 1]}, ValueError, "increasing values in"),
        ({"bin_edges": [0, 0.5, 1, 1.5, 2]}, ValueError, r"in \[0, 1\]"),
        ({"accuracy": [np.nan, np.nan, 0.5, 0.9]}, ValueError, "NaN in a bin with samples"),
        ({"accuracy": [np.nan, 0.3, 50.0, 0.9]}, ValueError, r"fractions in \[0, 1\], got values in \[0.3, 50.0\]"),
    ],
)
def test_reliability_rejects_bad_bins(tmp_path, change, error, message):
    model = reliability_bins(0.1) | change
    model = {key: value for key, value in model.items() if value is not None}
    with pytest.raises(error, match=message):
        plots.plot_reliability({"erm": model}, tmp_path / "bad.png", dpi=DPI)


def test_reliability_rejects_non_mapping_model(tmp_path):
    with pytest.raises(TypeError, match=r"models\['erm'\] must be a mapping"):
        plots.plot_reliability({"erm": [1, 2]}, tmp_path / "bad.png", dpi=DPI)


# ---------------------------------------------------------------- plot_curves


def test_curves_one_panel_per_quantity_mean_over_seeds(tmp_path):
    rng = np.random.default_rng(3)
    loss = {"mixup": rng.random((4, 12)), "kmixup": rng.random((3, 10))}
    accuracy = {"mixup": 100 * rng.random((4, 12))}
    path = tmp_path / "curves.png"
    fig = plots.plot_curves({"train loss": loss, "train accuracy (%)": accuracy}, path, dpi=DPI)
    assert_png_matches_figure(path, fig)
    loss_ax, accuracy_ax = fig.axes
    assert loss_ax.get_ylabel() == "train loss" and accuracy_ax.get_ylabel() == "train accuracy (%)"
    assert loss_ax.get_xlabel() == "epoch"
    mixup_line, kmixup_line = loss_ax.get_lines()
    np.testing.assert_array_equal(kmixup_line.get_xdata(), np.arange(1, 11))
    np.testing.assert_allclose(mixup_line.get_ydata(), loss["mixup"].mean(axis=0))
    assert kmixup_line.get_color() == plots.METHOD_COLORS["kmixup"]
    assert legend_texts(loss_ax) == ["Mixup", "k-Mixup"]


@pytest.mark.parametrize(
    ("curves", "error", "message"),
    [
        ({}, ValueError, "curves is empty"),
        ({"loss": {}}, ValueError, r"curves\['loss'\] is empty"),
        ({"loss": {"mixup": [1.0, 2.0]}}, ValueError, r"curves\['loss'\]\['mixup'\] must be 2-D"),
        ({"loss": [1.0]}, TypeError, r"curves\['loss'\] must be a mapping"),
    ],
)
def test_curves_rejects_bad_input(tmp_path, curves, error, message):
    with pytest.raises(error, match=message):
        plots.plot_curves(curves, tmp_path / "bad.png", dpi=DPI)


# ---------------------------------------------------------------- plot_series

K_GRID = np.array([1.0, 2.0, 4.0, 8.0, 16.0])


def test_series_with_power_law_fit_reports_slope(tmp_path):
    path = tmp_path / "series.png"
    fraction = 0.4 * K_GRID**-0.5
    fig = plots.plot_series(K_GRID, {"cross-cluster fraction": fraction}, path, x_label="k", y_label="fraction",
                            power_law_fit=["cross-cluster fraction"], log_x=True, log_y=True, dpi=DPI)
    assert_png_matches_figure(path, fig)
    ax = fig.axes[0]
    assert legend_texts(ax) == ["cross-cluster fraction", "cross-cluster fraction fit: slope -0.50"]
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), fraction)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert [label.get_text() for label in ax.get_xticklabels()] == ["1", "2", "4", "8", "16"]


def test_series_error_bands_and_method_colours(tmp_path):
    noise = np.linspace(0, 1, 4)
    ys = {"erm": 5 + 40 * noise, "kmixup": 5 + 20 * noise}
    fig = plots.plot_series(noise, ys, tmp_path / "robust.png", x_label="noise std", y_label="test error (%)",
                            errors={"kmixup": np.full(4, 1.5)}, dpi=DPI)
    ax = fig.axes[0]
    assert legend_texts(ax) == ["ERM", "k-Mixup"]
    assert [line.get_color() for line in ax.get_lines()] == [plots.METHOD_COLORS["erm"], plots.METHOD_COLORS["kmixup"]]
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    np.testing.assert_allclose([band.min(), band.max()], [3.5, 26.5])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"ys": {"bias": [1.0, 2.0]}}, ValueError, r"ys\['bias'\] has length 2 but x has length 5"),
        ({"errors": {"other": np.ones(5)}}, ValueError, "errors has series 'other' that is not in ys"),
        ({"errors": {"bias": -np.ones(5)}}, ValueError, "non-negative half-widths, got -1.0"),
        ({"power_law_fit": "bias"}, TypeError, "got the string 'bias'; wrap it in a list"),
        ({"power_law_fit": ["variance"]}, ValueError, r"unknown series \['variance'\]"),
        ({"ys": {"bias": [0.0, 1, 2, 3, 4]}, "power_law_fit": ["bias"]}, ValueError, "needs x > 0 and y > 0"),
        ({"ys": {"bias": [0.0, 1, 2, 3, 4]}, "log_y": True}, ValueError, "must be > 0 on a log axis, got 0.0"),
        ({"x": [0.0, 1, 2, 3, 4], "log_x": True}, ValueError, "x must be > 0 on a log axis"),
        ({"ys": {}}, ValueError, "ys is empty"),
    ],
)
def test_series_rejects_bad_input(tmp_path, kwargs, error, message):
    arguments = {"x": K_GRID, "ys": {"bias": 1 / K_GRID}} | kwargs
    with pytest.raises(error, match=message):
        plots.plot_series(arguments.pop("x"), arguments.pop("ys"), tmp_path / "bad.png", x_label="K",
                          y_label="bias", dpi=DPI, **arguments)


# ---------------------------------------------------------------- plot_matching_distribution


def matching_data():
    rng = np.random.default_rng(4)
    points = rng.normal(size=(40, 2))
    weights = np.zeros(40)
    weights[[3, 7, 11]] = [0.5, 0.3, 0.2]
    return points, weights


def test_matching_distribution_colours_weighted_points_and_marks_anchor(tmp_path):
    points, weights = matching_data()
    path = tmp_path / "matching.png"
    fig = plots.plot_matching_distribution(points, weights, 3, path, labels=np.arange(40) % 2, dpi=DPI)
    assert_png_matches_figure(path, fig)
    ax = fig.axes[0]
    weighted = [collection for collection in ax.collections if collection.get_array() is not None]
    assert len(weighted) == 1
    np.testing.assert_allclose(np.sort(weighted[0].get_array()), [0.2, 0.3, 0.5])
    assert "point i = 3" in legend_texts(ax)
    assert ax.get_title() == "Matching distribution of point 3"
    assert fig.axes[1].get_ylabel() == "matching weight $D_i(j)$"


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"anchor_index": 40}, ValueError, r"anchor_index must be in \[0, 39\], got 40"),
        ({"anchor_index": 1.0}, TypeError, "anchor_index must be an int, got 1.0"),
        ({"weights": np.zeros(40)}, ValueError, "weights are all zero"),
        ({"weights": -np.ones(40)}, ValueError, "weights must be non-negative, got -1.0"),
        ({"weights": np.ones(39)}, ValueError, "weights has length 39 but points has length 40"),
        ({"points": np.ones((40, 3))}, ValueError, r"points must have shape \(n_samples, 2\)"),
        ({"labels": np.zeros(5)}, ValueError, "labels has length 5 but points has length 40"),
        ({"labels": np.full(40, 0.5)}, ValueError, "non-negative integer class labels, got 0.5"),
    ],
)
def test_matching_distribution_rejects_bad_input(tmp_path, change, error, message):
    points, weights = matching_data()
    arguments = {"points": points, "weights": weights, "anchor_index": 3, "labels": None} | change
    with pytest.raises(error, match=message):
        plots.plot_matching_distribution(arguments.pop("points"), arguments.pop("weights"),
                                         arguments.pop("anchor_index"), tmp_path / "bad.png", dpi=DPI, **arguments)


def test_path_must_be_a_path(tmp_path):
    points, weights = matching_data()
    with pytest.raises(TypeError, match="path must be a str or os.PathLike, got int"):
        plots.plot_matching_distribution(points, weights, 3, 42, dpi=DPI)


@pytest.mark.parametrize(
    ("dpi", "error", "message"),
    [(0, ValueError, "dpi must be a positive int, got 0"), (-10, ValueError, "got -10"),
     (72.5, TypeError, "dpi must be an int, got 72.5 of type float"), (True, TypeError, "got True of type bool")],
)
def test_dpi_must_be_a_positive_int(tmp_path, dpi, error, message):
    with pytest.raises(error, match=message):
        plots.plot_series([1.0, 2.0], {"bias": [1.0, 0.5]}, tmp_path / "dpi.png", x_label="K", y_label="bias", dpi=dpi)


def test_method_colors_rejects_non_string_key():
    with pytest.raises(TypeError, match="method key must be a str, got 7 of type int"):
        plots.method_colors(["mixup", 7])


def test_heatmap_of_one_value_keeps_its_colour_bar_at_the_value(tmp_path):
    """A grid of 0 % errors everywhere must not get a colour bar reaching below 0."""
    fig = plots.plot_heatmap([1, 2], [0.5, 1.0], np.zeros((2, 2)), tmp_path / "h.png")
    image = fig.axes[0].images[0]
    low, high = image.get_clim()
    assert low == 0.0 and high > 0.0


def test_confidence_histogram_figure_draws_each_models_fractions(tmp_path):
    counts = {"erm": [0, 0, 1, 9], "Mixup": [0, 4, 4, 2]}
    fig = plots.plot_confidence_histograms(counts, tmp_path / "fig7.png")
    assert (tmp_path / "fig7.png").is_file()
    for ax, expected in zip(fig.axes, counts.values()):
        heights = [patch.get_height() for patch in ax.patches]
        assert heights == pytest.approx(np.array(expected) / sum(expected))
        assert [patch.get_x() for patch in ax.patches] == pytest.approx([0.0, 0.25, 0.5, 0.75])
    with pytest.raises(ValueError, match=r"histograms\['b'\] has length 3 but histograms\['a'\] has length 2"):
        plots.plot_confidence_histograms({"a": [1, 2], "b": [1, 2, 3]}, tmp_path / "bad.png")
    with pytest.raises(ValueError, match=r"histograms\['a'\] must be counts >= 0 with a positive total"):
        plots.plot_confidence_histograms({"a": [0, 0]}, tmp_path / "bad.png")
