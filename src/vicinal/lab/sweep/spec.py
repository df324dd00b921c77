"""Sweep specifications: TOML files or ``key=value`` overrides, validated and expanded to run configs.

The papers' comparisons are averages over methods x hyper-parameters x seeds
(Local Mixup sweeps ``eps`` over 1000 seeds per point, k-Mixup sweeps ``k`` and
``alpha``).  A sweep file names that product once::

    name = "spirals-eps"
    seeds = 10                      # seeds 0..9, or a list such as [0, 3, 7]

    [base]                          # settings shared by every run
    dataset = "spirals"
    epochs = 200

    [grid]                          # cartesian product
    method = ["erm", "mixup", "local_mixup"]
    alpha = [0.5, 1.0]

    [methods.local_mixup]           # extra grid for one method only
    eps = [1.0, 2.0, 4.0]           # a list is a grid axis ...
    graph = "threshold"             # ... a scalar a fixed setting

The same spec can be given, or edited, from the command line with dotted
``key=value`` overrides: ``seeds=3 grid.alpha=0.5,1 methods.local_mixup.eps=[1,2]``.

:func:`expand_grid` turns a spec into the config list that
:func:`vicinal.lab.sweep.runner.run_sweep` runs.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..store import canonical_json
from ..suggest import did_you_mean

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "SweepSpec",
    "apply_overrides",
    "expand_grid",
    "load_sweep",
    "parse_sweep",
    "parse_value",
    "spec_from_overrides",
]

_TOP_LEVEL = ("name", "seeds", "base", "grid", "methods")


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: base settings, a grid, per-method grids, and seeds.

    Build it with :func:`load_sweep`, :func:`parse_sweep` or
    :func:`spec_from_overrides`; turn it into run configs with :func:`expand_grid`.

    Attributes
    ----------
    name : str
        Label for progress bars and reports ("" when not given).
    seeds : tuple of int
        Seeds every configuration is run with.
    base : dict
        Settings shared by every run.
    grid : dict of str to list
        Axes of the cartesian product.
    methods : dict of str to dict
        For each value of the ``method`` setting, extra settings: list values are
        grid axes, other values fixed.  They override ``base`` and ``grid``.
    """

    name: str
    seeds: tuple[int, ...]
    base: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)
    methods: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Return the TOML-shaped dict this spec was parsed from (seeds as a list).

        Returns
        -------
        dict
        """
        return copy.deepcopy(
            {
                "name": self.name,
                "seeds": list(self.seeds),
                "base": self.base,
                "grid": self.grid,
                "methods": self.methods,
            }
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_seeds(seeds: Any, source: str) -> tuple[int, ...]:
    if _is_int(seeds) and seeds >= 1:
        return tuple(range(seeds))
    if isinstance(seeds, list) and seeds and all(_is_int(s) for s in seeds):
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"{source}: 'seeds' lists a seed twice: {seeds!r}")
        return tuple(seeds)
    raise ValueError(
        f"{source}: 'seeds' must be a positive int (seeds 0..n-1) or a non-empty list of "
        f"distinct ints, got {seeds!r}"
    )


def _table(data: Mapping, name: str, source: str) -> dict:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ValueError(f"{source}: '{name}' must be a table ([{name}]), got {value!r}")
    if "seed" in value:
        raise ValueError(f"{source}: '{name}.seed' is not allowed; give seeds with the top-level 'seeds' key")
    return value


def parse_sweep(data: Mapping[str, Any], source: str = "sweep") -> SweepSpec:
    """Validate a TOML-shaped dict into a :class:`SweepSpec`.

    Parameters
    ----------
    data : Mapping
        Keys ``name`` (optional str), ``seeds`` (required), ``base``, ``grid``,
        ``methods`` (optional tables), as in the module docstring.
    source : str, default "sweep"
        Where ``data`` came from, to prefix error messages (e.g. the file name).

    Returns
    -------
    SweepSpec

    Raises
    ------
    ValueError
        Naming the offending key and what was expected.
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"{source}: expected a dict of sweep settings, got {type(data).__name__}")
    unknown = sorted(set(data) - set(_TOP_LEVEL))
    if unknown:
        hints = "".join(did_you_mean(key, _TOP_LEVEL) for key in unknown)
        raise ValueError(f"{source}: unknown top-level key(s) {unknown}{hints}; expected some of {list(_TOP_LEVEL)} "
                         f"(run settings go in [base] or [grid])")
    name = data.get("name", "")
    if not isinstance(name, str):
        raise ValueError(f"{source}: 'name' must be a string, got {name!r}")
    if "seeds" not in data:
        raise ValueError(f"{source}: missing 'seeds' (a positive int, or a list of ints; e.g. seeds = 5, or "
                         f"--set seeds=5)")
    seeds = _parse_seeds(data["seeds"], source)
    base, grid = _table(data, "base", source), _table(data, "grid", source)
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ValueError(
                f"{source}: 'grid.{key}' must be a non-empty list of values, got {values!r} "
                f"(put a fixed setting in [base])"
            )
    both = sorted(set(base) & set(grid))
    if both:
        raise ValueError(f"{source}: {both} set in both [base] and [grid]; keep each setting in one place")
    method_values = grid.get("method", [base["method"]] if "method" in base else [])
    bad = [m for m in method_values if not isinstance(m, str)]
    if bad:
        raise ValueError(f"{source}: 'method' values must be strings, got {bad!r}")
    methods = _table(data, "methods", source)
    for method, table in methods.items():
        where = f"methods.{method}"
        if method not in method_values:
            raise ValueError(
                f"{source}: '{where}' is given but method {method!r}{_method_hint(method)} is not swept; "
                f"the 'method' values in [base]/[grid] are {method_values!r}"
            )
        if not isinstance(table, dict):
            raise ValueError(f"{source}: '{where}' must be a table, got {table!r}")
        for key, value in table.items():
            if key in ("seed", "method"):
                raise ValueError(f"{source}: '{where}.{key}' is not allowed inside a method table")
            if isinstance(value, list) and not value:
                raise ValueError(f"{source}: '{where}.{key}' is an empty list; expected at least one value")
    return SweepSpec(name=name, seeds=seeds, base=dict(base), grid=dict(grid), methods=dict(methods))


def _method_hint(method: str) -> str:
    from ..config import METHODS

    return "" if method in METHODS else did_you_mean(method, METHODS)


def load_sweep(path: str | os.PathLike, overrides: Sequence[str] = ()) -> SweepSpec:
    """Read a sweep specification from a TOML file, then apply ``key=value`` overrides.

    Parameters
    ----------
    path : str or os.PathLike
        TOML file in the format of the module docstring.
    overrides : sequence of str, optional
        Dotted ``key=value`` edits applied after reading (see :func:`apply_overrides`).

    Returns
    -------
    SweepSpec

    Raises
    ------
    ValueError
        If the file is not valid TOML (the message gives tomllib's line and column)
        or a key holds the wrong kind of value (the message names the key).
    FileNotFoundError
        If ``path`` does not exist.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        try:
            data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"{path}: invalid TOML: {err}") from None
    return parse_sweep(apply_overrides(data, overrides), source=str(path))


# Anything that does not open a TOML list, table or string is taken as text: bare words (mixup), paths
# (/data/cifar, ~/data, C:\\data), text with spaces once the shell removed its quotes.
_BARE_TEXT = re.compile(r"[^\[{\"'\s][^\[\]{}\"'#]*\Z")


def parse_value(text: str, item: str) -> Any:
    """Parse one override value: TOML (``1``, ``0.5``, ``true``, ``[1, 2]``), ``a,b,c``, or bare text
    (a word such as ``mixup`` or a path such as ``/data/cifar``, no TOML quotes needed).

    ``item`` is the whole ``key=value`` text, quoted in error messages.
    """
    text = text.strip()
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        pass
    if "," in text and not text.startswith(("[", "{", '"', "'")):
        return [parse_value(part, item) for part in text.split(",")]
    if _BARE_TEXT.match(text):
        return text  # method=mixup, root=/data/cifar: no shell-quoted TOML quotes needed
    raise ValueError(
        f"cannot parse the value {text!r} in override {item!r}: expected a TOML value "
        f'(1, 0.5, true, "text", [1, 2]), bare text (mixup, /data/cifar), or comma-separated values'
    )


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict:
    """Return a copy of a TOML-shaped sweep dict with ``key=value`` edits applied.

    Keys are dotted paths: ``seeds``, ``name``, ``base.KEY``, ``grid.KEY``,
    ``methods.METHOD.KEY``, or a bare run setting (``epochs=20``,
    ``model_params.widths=[64]``), which means ``base.KEY`` as in ``vicinal compare --set``.  Values are TOML (``0.5``, ``true``, ``"a b"``,
    ``[1, 2]``), bare words (``mixup``), or comma lists (``0.5,1`` is ``[0.5, 1]``).
    Setting ``base.KEY`` removes ``grid.KEY`` and vice versa, so an override can
    fix a swept setting or sweep a fixed one.

    Parameters
    ----------
    data : Mapping
        TOML-shaped sweep dict (may be empty).
    overrides : sequence of str
        The edits, in order.

    Returns
    -------
    dict

    Raises
    ------
    ValueError
        If an item has no ``=``, an unknown key path, or an unparsable value.
    """
    if isinstance(overrides, str):
        raise TypeError(f"overrides must be a sequence of 'key=value' strings, got the single string {overrides!r}")
    out = copy.deepcopy(dict(data))
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise ValueError(f"override {item!r} must look like key=value (e.g. grid.alpha=0.5,1)")
        path, text = item.split("=", 1)
        parts = _override_path(path.strip().split("."), item)
        value = parse_value(text, item)
        if parts[0] in ("base", "grid") and len(parts) == 2:
            for table in ("base", "grid"):
                out.get(table, {}).pop(parts[1], None)
        target = out
        for part in parts[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ValueError(f"override {item!r}: {part!r} is not a table in the sweep")
        target[parts[-1]] = value
    return out


def _override_path(parts: list[str], item: str) -> list[str]:
    """The dotted path of an override inside the sweep dict; a bare run setting (``epochs=20``, as
    ``vicinal compare --set`` takes it) means ``base.epochs``."""
    from ..config import RunConfig  # the run settings, for bare keys and did-you-mean hints

    settings = [f.name for f in dataclasses.fields(RunConfig)]
    if not all(parts):
        raise ValueError(f"override {item!r}: empty part in the key {'.'.join(parts)!r}")
    if len(parts) == 1 and parts[0] in ("name", "seeds"):
        return parts
    if parts[0] in ("base", "grid") and len(parts) >= 2:
        return parts
    if parts[0] == "methods" and len(parts) >= 3:
        return parts
    if parts[0] in settings:
        return ["base", *parts]
    hint = did_you_mean(parts[0], [*settings, "name", "seeds", "base", "grid", "methods"])
    raise ValueError(
        f"override {item!r}: unknown key {'.'.join(parts)!r}{hint}; expected a run setting (epochs=20, "
        f"model_params.widths=[64,64]), seeds, name, base.KEY, grid.KEY or methods.METHOD.KEY"
    )


def spec_from_overrides(overrides: Sequence[str], spec: SweepSpec | None = None) -> SweepSpec:
    """Build a sweep spec from ``key=value`` items alone, or edit an existing spec.

    ``spec_from_overrides(["seeds=3", "grid.method=mixup,local_mixup",
    "methods.local_mixup.eps=1,2"])`` is the same spec as the equivalent TOML file.

    Parameters
    ----------
    overrides : sequence of str
        Dotted ``key=value`` items (see :func:`apply_overrides`).
    spec : SweepSpec, optional
        Starting point; an empty spec when omitted.

    Returns
    -------
    SweepSpec
    """
    start = spec.to_dict() if spec is not None else {}
    return parse_sweep(apply_overrides(start, overrides), source="overrides")


def expand_grid(spec: SweepSpec) -> list[dict]:
    """List the run configs of a sweep: base, then grid, then method settings, then seed.

    Seeds are the outer loop, so a sweep stopped early already has every
    configuration at its first seeds.  Configs that come out identical (a method
    table fixing a grid setting that does not apply to it) are listed once.

    Parameters
    ----------
    spec : SweepSpec

    Returns
    -------
    list of dict
        JSON-serialisable configs, each with a ``"seed"``.
    """
    if not isinstance(spec, SweepSpec):
        raise TypeError(f"expected a SweepSpec (from load_sweep or parse_sweep), got {type(spec).__name__}")
    configs, seen = [], set()
    for seed in spec.seeds:
        for values in itertools.product(*spec.grid.values()):
            config = {**spec.base, **dict(zip(spec.grid, values))}
            extra = spec.methods.get(config.get("method"), {})
            axes = [v if isinstance(v, list) else [v] for v in extra.values()]
            for extra_values in itertools.product(*axes):
                run = copy.deepcopy({**config, **dict(zip(extra, extra_values)), "seed": seed})
                text = canonical_json(run)
                if text not in seen:
                    seen.add(text)
                    configs.append(run)
    return configs
