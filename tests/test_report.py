"""Reports: Student-t intervals against scipy by hand, grouping, pairing, rendering."""

import csv
import io
import math

import numpy as np
import pytest
from scipy import stats

from vicinal.lab.report import mean_ci, paired_differences, summarize
from vicinal.lab.store import ResultStore


def by_hand(values, confidence=0.95):
    x = np.asarray(values, dtype=float)
    return x.mean(), stats.t.ppf((1 + confidence) / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))


def row(seed, error, **config):
    return {"config": {**config, "seed": seed}, "metrics": {"error": error, "curve": [1.0, error / 2]}}


@pytest.fixture
def rows():
    """Mixup and Local Mixup (two eps) at alpha 0.5 and 1, five seeds; random errors."""
    rng = np.random.default_rng(0)
    out = []
    for alpha in (1.0, 0.5):
        for seed in range(5):
            out.append(row(seed, rng.uniform(0.1, 0.3), method="mixup", alpha=alpha))
            for eps in (2.0, 1.0):
                out.append(row(seed, rng.uniform(0.1, 0.3), method="local_mixup", alpha=alpha, eps=eps))
    return out


@pytest.mark.parametrize("confidence", [0.95, 0.9])
def test_mean_ci_matches_scipy_t(confidence):
    values = np.random.default_rng(1).normal(3.0, 2.0, size=7)
    interval = mean_ci(values, confidence)
    mean, half = by_hand(values, confidence)
    assert interval.n == 7
    assert interval.mean == pytest.approx(mean) and interval.half_width == pytest.approx(half)
    low, high = stats.t.interval(confidence, 6, loc=values.mean(), scale=stats.sem(values))
    assert (interval.low, interval.high) == pytest.approx((low, high))


def test_mean_ci_of_one_or_no_value_has_no_width():
    one = mean_ci([2.5])
    assert one.mean == 2.5 and math.isnan(one.half_width) and one.n == 1
    assert mean_ci([]).n == 0 and math.isnan(mean_ci([]).mean)
    with pytest.raises(ValueError, match=r"confidence must be a float in \(0, 1\), got 95"):
        mean_ci([1.0, 2.0], 95)


def test_summarize_groups_and_intervals(rows):
    table = summarize(rows, by=["method", "eps"], metrics=["error", "curve[-1]"])
    assert table.groups == (("local_mixup", 1.0), ("local_mixup", 2.0), ("mixup", None))
    for group, cells in zip(table.groups, table.cells):
        chosen = [r for r in rows if (r["config"]["method"], r["config"].get("eps")) == group]
        assert len(chosen) == 10 and cells[0].n == 10  # 2 alphas x 5 seeds
        mean, half = by_hand([r["metrics"]["error"] for r in chosen])
        assert (cells[0].mean, cells[0].half_width) == pytest.approx((mean, half))
        assert cells[1].mean == pytest.approx(mean / 2)  # curve[-1] is error / 2


def test_summarize_reads_store_rows(tmp_path, rows):
    with ResultStore(tmp_path / "r.db") as store:
        for r in rows:
            store.put(r["config"], r["metrics"], wall_s=0.0, started_at="a", finished_at="b")
        from_store = summarize(store.rows(method="mixup"), by=["alpha"], metrics=["error"])
    expected = summarize([r for r in rows if r["config"]["method"] == "mixup"], by=["alpha"], metrics=["error"])
    assert from_store == expected
    assert from_store.groups == ((0.5,), (1.0,))


def test_paired_differences_use_shared_seeds_only(rows):
    rows = rows + [row(9, 0.5, method="mixup", alpha=1.0), row(8, 0.9, method="local_mixup", alpha=1.0, eps=1.0)]
    table = paired_differences(rows, baseline="mixup", by=["alpha"], compare=["method", "eps"], metrics=["error"])
    assert table.by == ("alpha", "method", "eps")
    assert table.groups == ((0.5, "local_mixup", 1.0), (0.5, "local_mixup", 2.0), (1.0, "local_mixup", 1.0), (1.0, "local_mixup", 2.0))

    def error(method, alpha, seed, eps=None):
        (match,) = [
            r["metrics"]["error"]
            for r in rows
            if (r["config"]["method"], r["config"]["alpha"], r["config"]["seed"], r["config"].get("eps"))
            == (method, alpha, seed, eps)
        ]
        return match

    for (alpha, _, eps), (cell,) in zip(table.groups, table.cells):
        diffs = [error("local_mixup", alpha, s, eps) - error("mixup", alpha, s) for s in range(5)]
        assert cell.n == 5  # seeds 8 and 9 have no partner
        assert (cell.mean, cell.half_width) == pytest.approx(by_hand(diffs))


def test_paired_differences_refuse_ambiguous_pairs(rows):
    with pytest.raises(ValueError, match="two baseline runs share the same seed.*add the config key"):
        paired_differences(rows, baseline="mixup", compare=["method", "eps"], metrics=["error"])  # alpha missing
    with pytest.raises(ValueError, match="two candidate runs share the same seed.*to by or compare"):
        paired_differences(rows, baseline="mixup", by=["alpha"], metrics=["error"])  # eps missing
    with pytest.raises(ValueError, match=r"no run matches baseline \{'method': 'erm'\}"):
        paired_differences(rows, baseline="erm", by=["alpha"], metrics=["error"])


def test_candidates_without_shared_seeds_are_shown_empty():
    rows = [row(0, 0.2, method="mixup"), row(1, 0.3, method="kmixup")]
    table = paired_differences(rows, baseline={"method": "mixup"}, metrics=["error"])
    ((cell,),) = table.cells
    assert table.groups == (("kmixup",),) and cell.n == 0 and math.isnan(cell.mean)
    assert "n/a" in table.to_text()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"by": "method", "metrics": ["error"]}, TypeError, r"by must be a list of names, got the string 'method' \(write \['method'\]\)"),
        ({"by": ["methd"], "metrics": ["error"]}, ValueError, r"by key\(s\) \['methd'\] appear in no run's config"),
        ({"by": [], "metrics": []}, ValueError, "metrics must be a non-empty list of str"),
        ({"by": [], "metrics": ["acc"]}, ValueError, "metric 'acc' is missing from the run"),
        ({"by": [], "metrics": ["curve"]}, ValueError, r"'curve' is a per-epoch curve; pick an epoch, e.g. 'curve\[-1\]'"),
        ({"by": [], "metrics": ["curve[5]"]}, ValueError, "index out of range for a curve of length 2"),
        ({"by": [], "metrics": ["error[0]"]}, ValueError, "'error' is not a list"),
    ],
)
def test_summarize_names_bad_arguments(rows, kwargs, error, match):
    with pytest.raises(error, match=match):
        summarize(rows, **kwargs)


def test_summarize_needs_rows():
    with pytest.raises(ValueError, match="no rows to report on"):
        summarize([], by=["method"], metrics=["error"])
    with pytest.raises(TypeError, match="each row needs a 'config' dict and a 'metrics' dict"):
        summarize([{"seed": 0}], by=[], metrics=["error"])


def test_renderings_agree(rows):
    table = summarize(rows, by=["method", "eps"], metrics=["error"])
    cell = table.cells[0][0]
    shown = f"{cell.mean:.4g} ± {cell.half_width:.2g}"

    text = table.to_text().splitlines()
    assert text[0] == table.title and "error (mean ± 95% CI)" in text[1]
    assert set(text[2].replace(" ", "")) == {"-"} and text[5].startswith("mixup")
    column = text[1].index("error")
    assert text[3][column:] == shown and text[2][column - 2 : column] == "  "  # aligned under its header

    markdown = table.to_markdown().splitlines()
    assert markdown[2].startswith("| method | eps | n |") and markdown[3] == "| --- | --- | ---: | ---: |"
    assert markdown[4] == f"| local_mixup | 1.0 | 10 | {shown} |" and markdown[6].startswith("| mixup | - | 10 |")

    parsed = list(csv.DictReader(io.StringIO(table.to_csv())))
    assert [p["method"] for p in parsed] == ["local_mixup", "local_mixup", "mixup"] and parsed[2]["eps"] == ""
    for record, line in zip(table.records(), parsed):
        assert float(line["error_mean"]) == record["error_mean"]
        assert float(line["error_ci_high"]) == pytest.approx(record["error_mean"] + record["error_half_width"])
        assert int(line["n"]) == 10 and float(line["confidence"]) == 0.95
