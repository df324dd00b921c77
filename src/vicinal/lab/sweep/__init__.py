"""Sweeps: spec.py parses and expands sweep specs (TOML or key=value overrides); runner.py runs them resumably.

Every public name is re-exported here, so ``from vicinal.lab.sweep import run_sweep, load_sweep`` works.
"""

from .runner import Failure, SweepFailed, SweepSummary, run_sweep
from .spec import SweepSpec, apply_overrides, expand_grid, load_sweep, parse_sweep, parse_value, spec_from_overrides

__all__ = [
    "Failure",
    "SweepFailed",
    "SweepSpec",
    "SweepSummary",
    "apply_overrides",
    "expand_grid",
    "load_sweep",
    "parse_sweep",
    "parse_value",
    "run_sweep",
    "spec_from_overrides",
]
