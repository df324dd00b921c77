"""Tables of sweep results: mean and Student-t confidence interval per group, and
paired differences between methods over shared seeds.

The papers compare methods by averages over seeds (Local Mixup: 1000 runs per
point; k-Mixup and Carratino et al.: several seeds per setting).  Two methods run
with the same seeds share data splits and initialisations, so their per-seed
difference has a much tighter interval than the difference of two means;
:func:`paired_differences` reports that.

Rows are :class:`~vicinal.lab.store.RunRecord` objects (or mappings with
``"config"`` and ``"metrics"``).  A metric is named as stored (``"test_error"``)
or, for a per-epoch curve, with an index (``"test_error[-1]"`` is the last epoch).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from scipy import stats

__all__ = ["Interval", "Table", "mean_ci", "paired_differences", "summarize"]

_INDEXED = re.compile(r"(?P<name>.+)\[(?P<index>-?\d+)\]\Z")


@dataclass(frozen=True)
class Interval:
    """A sample mean with the half-width of its confidence interval.

    Attributes
    ----------
    mean : float
        Sample mean (NaN for an empty sample).
    half_width : float
        ``t_{(1+c)/2, n-1} * s / sqrt(n)``; NaN when ``n < 2``.
    n : int
        Sample size.
    """

    mean: float
    half_width: float
    n: int

    @property
    def low(self) -> float:
        """Lower end of the interval."""
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        """Upper end of the interval."""
        return self.mean + self.half_width


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean and Student-t confidence interval of independent values.

    Parameters
    ----------
    values : sequence of float
        One value per run (e.g. per seed).
    confidence : float, default 0.95
        Coverage of the interval, in (0, 1).

    Returns
    -------
    Interval
        ``half_width`` is NaN for fewer than two values.
    """
    _check_confidence(confidence)
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {x.shape}")
    n = int(x.size)
    if n == 0:
        return Interval(math.nan, math.nan, 0)
    if n == 1:
        return Interval(float(x[0]), math.nan, 1)
    t = stats.t.ppf((1 + confidence) / 2, df=n - 1)
    return Interval(float(x.mean()), float(t * x.std(ddof=1) / math.sqrt(n)), n)


@dataclass(frozen=True)
class Table:
    """One line per group, one interval per metric; renders as text, Markdown, CSV.

    Attributes
    ----------
    title : str
        What the numbers are (shown above text and Markdown tables).
    by : tuple of str
        Config keys that label each line.
    metrics : tuple of str
        Metric names, one column each.
    groups : tuple of tuple
        The values of ``by`` on each line (None where a run lacks the key).
    cells : tuple of tuple of Interval
        ``cells[i][j]`` is metric ``j`` on line ``i``.
    confidence : float
        Coverage of the intervals.
    """

    title: str
    by: tuple[str, ...]
    metrics: tuple[str, ...]
    groups: tuple[tuple, ...]
    cells: tuple[tuple[Interval, ...], ...]
    confidence: float

    def records(self) -> list[dict]:
        """Return one flat dict per line: group values, ``n``, and per metric
        ``{m}_mean``, ``{m}_ci_low``, ``{m}_ci_high``, ``{m}_half_width``.

        Returns
        -------
        list of dict
        """
        out = []
        for group, cells in zip(self.groups, self.cells):
            record: dict[str, Any] = dict(zip(self.by, group))
            record["n"] = cells[0].n if cells else 0
            for metric, cell in zip(self.metrics, cells):
                record.update(
                    {
                        f"{metric}_mean": cell.mean,
                        f"{metric}_ci_low": cell.low,
                        f"{metric}_ci_high": cell.high,
                        f"{metric}_half_width": cell.half_width,
                    }
                )
            record["confidence"] = self.confidence
            out.append(record)
        return out

    def _display_rows(self, digits: int) -> tuple[list[str], list[list[str]]]:
        level = f"{100 * self.confidence:g}% CI"
        header = [*self.by, "n", *(f"{m} (mean ± {level})" for m in self.metrics)]
        body = [
            [*(_show(v) for v in group), str(cells[0].n if cells else 0), *(_fmt(c, digits) for c in cells)]
            for group, cells in zip(self.groups, self.cells)
        ]
        return header, body

    def to_text(self, digits: int = 4) -> str:
        """Render as an aligned plain-text table for the terminal.

        Parameters
        ----------
        digits : int, default 4
            Significant digits of the means.

        Returns
        -------
        str
        """
        header, body = self._display_rows(digits)
        widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
        lines = [self.title, "  ".join(h.ljust(w) for h, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
        lines += ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)) for line in body]
        return "\n".join(line.rstrip() for line in lines) + "\n"

    def to_markdown(self, digits: int = 4) -> str:
        """Render as a Markdown table (GitHub flavour) under a title line.

        Parameters
        ----------
        digits : int, default 4
            Significant digits of the means.

        Returns
        -------
        str
        """
        header, body = self._display_rows(digits)
        align = ["---"] * len(self.by) + ["---:"] * (len(header) - len(self.by))
        lines = [f"**{self.title}**", "", _md_line(header), _md_line(align)] + [_md_line(line) for line in body]
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        """Render :meth:`records` as CSV text (full precision, one column per number).

        Returns
        -------
        str
        """
        records = self.records()
        columns = ("mean", "ci_low", "ci_high", "half_width")
        fields = [*self.by, "n"] + [f"{m}_{s}" for m in self.metrics for s in columns]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=[*fields, "confidence"], lineterminator="\n")
        writer.writeheader()
        for record in records:
            writer.writerow({k: _csv_value(v) for k, v in record.items()})
        return buffer.getvalue()

    def __str__(self) -> str:
        return self.to_text()


def summarize(
    rows: Iterable[Any], by: Sequence[str], metrics: Sequence[str], *, confidence: float = 0.95
) -> Table:
    """Mean ± Student-t confidence interval of each metric for each configuration group.

    Serves the papers' "average over seeds" tables (e.g. Local Mixup's error versus
    ``eps`` on spirals, k-Mixup's error versus ``k``).

    Parameters
    ----------
    rows : iterable of RunRecord or Mapping
        Runs, each with ``config`` and ``metrics``.
    by : sequence of str
        Config keys defining a group (e.g. ``["method", "eps"]``).  A run that lacks
        a key (``eps`` for plain Mixup) gets None there.
    metrics : sequence of str
        Metric names, optionally indexed for curves (``"test_error[-1]"``).
    confidence : float, default 0.95
        Coverage of the intervals.

    Returns
    -------
    Table
        Lines sorted by group values.

    Raises
    ------
    ValueError
        If there are no rows, a ``by`` key appears in no run, or a run lacks a
        metric or holds a non-number there (the message names it).
    """
    by, metrics = _check_names(by, "by"), _check_names(metrics, "metrics", nonempty=True)
    _check_confidence(confidence)
    parts, diverged = _healthy(_all_parts(rows))
    _check_keys_used(parts, by, "by")
    samples: dict[tuple, list[list[float]]] = {}
    for config, values in parts:
        group = tuple(_freeze(config.get(k)) for k in by)
        samples.setdefault(group, []).append([_metric(values, m, config) for m in metrics])
    groups = sorted(samples, key=_sort_key)
    cells = tuple(tuple(mean_ci(column, confidence) for column in zip(*samples[g])) for g in groups)
    title = f"mean over runs, by {', '.join(by) or 'nothing'}{_diverged_note(diverged)}"
    return Table(title, by, metrics, tuple(groups), cells, confidence)


def paired_differences(
    rows: Iterable[Any],
    *,
    baseline: str | Mapping[str, Any],
    metrics: Sequence[str],
    by: Sequence[str] = (),
    compare: Sequence[str] = ("method",),
    confidence: float = 0.95,
) -> Table:
    """Per-seed differences (candidate - baseline) with their Student-t interval.

    Each candidate run is paired with the baseline run that has the same seed and
    the same values of ``by``; only seeds both have are used.  Serves the papers'
    method comparisons (Local Mixup vs Mixup, k-Mixup vs 1-Mixup) with the
    variance of seed-to-seed luck removed.

    Parameters
    ----------
    rows : iterable of RunRecord or Mapping
        Runs, each with ``config`` and ``metrics``.
    baseline : str or Mapping
        Config values that pick the baseline runs; a string means
        ``{compare[0]: baseline}``, e.g. ``"mixup"``.
    metrics : sequence of str
        Metric names, optionally indexed (``"test_error[-1]"``).
    by : sequence of str, optional
        Config keys a candidate must share with its baseline (e.g. ``["alpha"]``).
    compare : sequence of str, default ("method",)
        Config keys that label the candidates (e.g. ``["method", "eps"]``).
    confidence : float, default 0.95
        Coverage of the intervals.

    Returns
    -------
    Table
        One line per (``by``, ``compare``) group of candidates; ``n`` is the
        number of shared seeds (0 with NaN cells when there are none).

    Raises
    ------
    ValueError
        If no run matches ``baseline``, a key appears in no run, or two runs
        would share a pair (add the key that tells them apart to ``by`` or
        ``compare``).
    """
    by = _check_names(by, "by")
    compare = _check_names(compare, "compare", nonempty=True)
    metrics = _check_names(metrics, "metrics", nonempty=True)
    _check_confidence(confidence)
    if isinstance(baseline, str):
        baseline = {compare[0]: baseline}
    if not isinstance(baseline, Mapping) or not baseline:
        raise TypeError(f"baseline must be a str or a non-empty dict of config values, got {baseline!r}")
    parts, diverged = _healthy(_all_parts(rows))
    _check_keys_used(parts, [*by, *compare, *baseline], "by/compare/baseline")

    is_base = [all(k in config and config[k] == v for k, v in baseline.items()) for config, _ in parts]
    if not any(is_base):
        raise ValueError(f"no run matches baseline {dict(baseline)!r}")

    base: dict[tuple, list[float]] = {}
    candidates: dict[tuple, dict[tuple, list[float]]] = {}
    for (config, values), in_base in zip(parts, is_base):
        context = tuple(_freeze(config.get(k)) for k in by)
        pair = (context, config.get("seed"))
        vector = [_metric(values, m, config) for m in metrics]
        if in_base:
            _add_once(base, pair, vector, config, "baseline run", "by")
        else:
            label = context + tuple(_freeze(config.get(k)) for k in compare)
            _add_once(candidates.setdefault(label, {}), pair, vector, config, "candidate run", "by or compare")

    groups = sorted(candidates, key=_sort_key)
    cells = []
    for label in groups:
        shared = [pair for pair in candidates[label] if pair in base]
        diffs = [[c - b for c, b in zip(candidates[label][pair], base[pair])] for pair in shared]
        columns = list(zip(*diffs)) if diffs else [[] for _ in metrics]
        cells.append(tuple(mean_ci(column, confidence) for column in columns))
    title = f"paired difference (run - baseline {dict(baseline)!r}) over shared seeds{_diverged_note(diverged)}"
    return Table(title, (*by, *compare), metrics, tuple(groups), tuple(cells), confidence)


# -- helpers -------------------------------------------------------------------------


def _check_confidence(confidence: Any) -> None:
    if not isinstance(confidence, float) or not 0 < confidence < 1:
        raise ValueError(f"confidence must be a float in (0, 1), got {confidence!r}")


def _check_names(names: Any, what: str, nonempty: bool = False) -> tuple[str, ...]:
    if isinstance(names, str):
        raise TypeError(f"{what} must be a list of names, got the string {names!r} (write [{names!r}])")
    names = tuple(names)
    if not all(isinstance(n, str) for n in names) or (nonempty and not names):
        raise ValueError(f"{what} must be a {'non-empty ' if nonempty else ''}list of str, got {list(names)!r}")
    return names


def _parts(row: Any) -> tuple[Mapping, Mapping]:
    if isinstance(row, Mapping):
        config, metrics = row.get("config"), row.get("metrics")
    else:
        config, metrics = getattr(row, "config", None), getattr(row, "metrics", None)
    if not isinstance(config, Mapping) or not isinstance(metrics, Mapping):
        raise TypeError(f"each row needs a 'config' dict and a 'metrics' dict (a RunRecord), got {row!r}")
    return config, metrics


def _all_parts(rows: Iterable[Any]) -> list[tuple[Mapping, Mapping]]:
    parts = [_parts(row) for row in rows]
    if not parts:
        raise ValueError("no rows to report on (is the store empty, or did a filter match nothing?)")
    return parts


def _healthy(parts: list[tuple[Mapping, Mapping]]) -> tuple[list[tuple[Mapping, Mapping]], list[Mapping]]:
    """Split off the runs stored as diverged (``metrics["diverged"]``, see ``trainer.diverged_metrics``): they
    have no test metrics, and averaging NaN would hide every other run. Raises when nothing is left."""
    healthy = [(config, metrics) for config, metrics in parts if metrics.get("diverged") is not True]
    diverged = [config for config, metrics in parts if metrics.get("diverged") is True]
    if not healthy:
        raise ValueError(f"all {len(parts)} runs diverged (NaN or Inf training loss); nothing to average. "
                         f"Lower the learning rate (e.g. first run: {dict(diverged[0])!r})")
    return healthy, diverged


def _diverged_note(diverged: list[Mapping]) -> str:
    if not diverged:
        return ""
    groups = sorted({f"{c.get('method', '?')} lr={c.get('lr', '?')}" for c in diverged})
    return f" ({len(diverged)} diverged run(s) left out: {', '.join(groups[:4])}{', ...' if len(groups) > 4 else ''})"


def _check_keys_used(parts: list[tuple[Mapping, Mapping]], keys: Iterable[str], what: str) -> None:
    seen = set().union(*(config.keys() for config, _ in parts))
    missing = [k for k in keys if k not in seen]
    if missing:
        raise ValueError(f"{what} key(s) {missing} appear in no run's config; config keys are {sorted(seen)}")


def _metric(metrics: Mapping, spec: str, config: Mapping) -> float:
    match = _INDEXED.match(spec)
    name = match["name"] if match else spec
    if name not in metrics:
        raise ValueError(
            f"metric {name!r} is missing from the run with config {dict(config)!r}; it has {sorted(metrics)}"
        )
    value = metrics[name]
    if match:
        if not isinstance(value, list):
            raise ValueError(f"metric {spec!r}: {name!r} is not a list (per-epoch curve), got {value!r}")
        try:
            value = value[int(match["index"])]
        except IndexError:
            raise ValueError(f"metric {spec!r}: index out of range for a curve of length {len(value)}") from None
    if isinstance(value, list):
        raise ValueError(f"metric {spec!r} is a per-epoch curve; pick an epoch, e.g. '{spec}[-1]'")
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value is None:
        raise ValueError(f"metric {spec!r} must be a number, got {value!r} in the run with config {dict(config)!r}")
    return float(value)


def _add_once(table: dict, pair: tuple, vector: list[float], config: Mapping, what: str, where: str) -> None:
    if pair in table:
        raise ValueError(
            f"two {what}s share the same seed and group ({dict(config)!r}); add the config key "
            f"that tells them apart to {where}"
        )
    table[pair] = vector


def _freeze(value: Any) -> Any:
    # Config values may be lists (layer sizes); groups must be hashable.
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


def _sort_key(group: tuple) -> tuple:
    # Numbers by value, then strings and other values by their text, None last.
    def one(value: Any) -> tuple:
        if value is None:
            return (2, 0.0, "")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return (0, float(value), "")
        return (1, 0.0, json.dumps(value, default=str))

    return tuple(one(v) for v in group)


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, tuple):
        return json.dumps(value)
    return str(value)


def _fmt(cell: Interval, digits: int) -> str:
    if cell.n == 0:
        return "n/a"
    if math.isnan(cell.half_width):
        return f"{cell.mean:.{digits}g} ± n/a"
    return f"{cell.mean:.{digits}g} ± {cell.half_width:.2g}"


def _md_line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, tuple):
        return json.dumps(value)
    return value
