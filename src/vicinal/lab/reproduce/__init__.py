"""``vicinal reproduce NAME``: one command per figure, table or theorem of the three papers.

Each reproduction is a module here with a ``reproduce(ctx) -> Section`` function. It trains or
simulates, writes its figures under ``<out>/figures/`` and returns a :class:`Section` (Markdown with
the command, the configuration, our numbers next to the published ones, and a verdict). Sections are
stored as ``<out>/reproductions/<name>.md`` and assembled into ``<out>/reproductions.md``.
``--quick`` runs a tiny version (seconds) that checks the direction of each claim only where it is
robust at that size; its sections go to ``<out>/reproductions-quick/`` so they never overwrite the
full runs.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path

from .base import Context, Section, assemble

#: name -> (one-line description, module implementing ``reproduce(ctx)``)
REPRODUCTIONS: dict[str, tuple[str, str]] = {
    "spirals-eps": ("Local Mixup Fig. 3: test error vs eps on two spirals", "spirals_eps"),
    "kmixup-toys": ("k-Mixup Table 9 + Fig. 1: toy datasets, k x alpha", "kmixup_toys"),
    "kmixup-uci": ("k-Mixup Table 4: Iris and Breast Cancer, k x alpha", "kmixup_uci"),
    "moons-rff": ("Carratino App. B.3 / Fig. 8-9: two moons, random Fourier features", "moons_rff"),
    "digits": ("digits: ERM/Mixup/Local/k-Mixup, rescaled, noise + FGSM robustness", "digits"),
    "local-1d": ("Local Mixup Sec. III-IV: 1-D theory (Lemma III.1, eq. 3-4, Thm IV.1-IV.3)", "local_1d"),
    "kmixup-clusters": ("k-Mixup Lemma 3.3, Thm 3.4, Fig. 3 matching distribution", "kmixup_clusters"),
    "alpha-calibration": ("k-Mixup Algorithm 1: alpha_k at constant xi", "alpha_calibration"),
    "lipschitz": ("Local Mixup Sec. V-B: Lipschitz lower bound Q(D) vs eps", "lipschitz"),
}

__all__ = ["REPRODUCTIONS", "Context", "Section", "run_reproduction"]


#: Reproductions whose authors' code differs from their paper: ``--recipe authors|corrected|both``.
WITH_RECIPES = ("spirals-eps",)


def run_reproduction(name: str, *, quick: bool = False, out: str | Path = "docs", workers: int = 2,
                     recipe: str | None = None, data_dir: str | Path | None = None, device: str | None = None,
                     seeds: int | None = None, epochs: int | None = None, checkpoint_dir: str | None = None) -> str:
    """Run reproduction ``name``, write its section and figures, rebuild the index; return the section text.

    ``recipe`` ("authors", "corrected" or "both", the default) applies to :data:`WITH_RECIPES` only.
    A ``name`` from ``recipes/`` (:func:`vicinal.lab.recipes.available_recipes`) is an image-benchmark
    table: it needs ``data_dir`` and takes ``device``, ``seeds``, ``epochs`` and ``checkpoint_dir``. A summary
    recipe (``available_recipes(summaries=True)``) trains nothing: it reads those tables' stores, takes
    ``seeds`` and ``epochs`` (the detail runs' options) and refuses the others.
    """
    from ..recipes import available_recipes

    image_options = dict(device=device, seeds=seeds, epochs=epochs, checkpoint_dir=checkpoint_dir)
    if name in available_recipes():
        return _run_image_recipe(name, quick=quick, out=Path(out), data_dir=data_dir, **image_options)
    if name in available_recipes(summaries=True):
        return _run_summary(name, quick=quick, out=Path(out), data_dir=data_dir, device=device, seeds=seeds,
                            epochs=epochs, checkpoint_dir=checkpoint_dir, recipe=recipe)
    given = [key for key, value in dict(image_options, data_dir=data_dir).items() if value is not None]
    if given and name in REPRODUCTIONS:
        raise ValueError(f"{', '.join(given)} apply to the image-benchmark recipes ({', '.join(available_recipes())}) "
                         f"only, not to {name!r}")
    if name not in REPRODUCTIONS:
        from ..suggest import did_you_mean

        valid = (*REPRODUCTIONS, *available_recipes(), *available_recipes(summaries=True))
        raise ValueError(f"unknown reproduction {name!r}{did_you_mean(name, valid)}; valid names: {', '.join(valid)}")
    if recipe is not None and recipe not in ("authors", "corrected", "both"):
        raise ValueError(f"recipe must be 'authors', 'corrected' or 'both', got {recipe!r}")
    if recipe not in (None, "both") and name not in WITH_RECIPES:
        raise ValueError(f"--recipe applies to {', '.join(WITH_RECIPES)} only (the other items follow one "
                         f"recipe, stated in their sections), got recipe={recipe!r} for {name!r}")
    module = importlib.import_module(f"{__name__}.{REPRODUCTIONS[name][1]}")
    ctx = Context(name=name, quick=quick, out=Path(out), workers=workers, recipe=recipe)
    return _write_section(ctx, module.reproduce, _registry())


def _write_section(ctx: Context, produce, registry: dict) -> str:
    """Run ``produce(ctx)`` timed, write its section and rebuild the index over ``registry``; return the text."""
    started = time.perf_counter()
    section = produce(ctx)
    section.compute_seconds = time.perf_counter() - started
    text = section.render(ctx)
    ctx.sections_dir.mkdir(parents=True, exist_ok=True)
    (ctx.sections_dir / f"{ctx.name}.md").write_text(text)
    assemble(ctx, registry)
    return text


def _run_image_recipe(name: str, *, quick: bool, out: Path, data_dir, **options) -> str:
    """``vicinal reproduce <recipe> --data-dir DIR``: see :mod:`.recipe_run` (integration, no paper)."""
    from ..recipes import available_recipes, load_recipe
    from .recipe_run import run_recipe

    if data_dir is None:
        raise ValueError(f"recipe {name!r} trains on local image data: pass --data-dir DIR (data_dir=) naming the "
                         f"directory of its dataset (see `vicinal list` for what each dataset reads)")
    ctx = Context(name=name, quick=quick, out=out, workers=1)
    return _write_section(ctx, lambda c: run_recipe(c, load_recipe(name), data_dir, **options), _registry())


def _run_summary(name: str, *, quick: bool, out: Path, seeds, epochs, **refused) -> str:
    """``vicinal reproduce <summary>``: see :mod:`.recipe_summary` (integration, no paper).

    It trains nothing, so the options of training (``--data-dir``, ``--device``, ``--checkpoint-dir``,
    ``--recipe``) and ``--quick`` are refused rather than ignored: the data dir a user passes here would
    not choose which stored runs are read (every data root's are found).
    """
    from ..recipes import load_summary
    from .recipe_summary import summarise

    given = [f"--{key.replace('_', '-')}" for key, value in refused.items() if value is not None] + ["--quick"] * quick
    if given:
        raise ValueError(f"{name!r} is a summary of other recipes: it trains nothing and reads the result stores "
                         f"their runs wrote, so it takes no {', '.join(given)}. Run `vicinal reproduce <recipe> "
                         f"--data-dir DIR` for each table it includes, then `vicinal reproduce {name}` (with the same "
                         f"--seeds / --epochs, if any)")
    ctx = Context(name=name, quick=False, out=out, workers=1)
    return _write_section(ctx, lambda c: summarise(c, load_summary(name), seeds=seeds, epochs=epochs), _registry())


def _registry() -> dict:
    """Every section the index can hold, in its order: the reproductions, the table recipes, the summaries."""
    from ..recipes import available_recipes

    return {**REPRODUCTIONS, **{n: None for n in available_recipes()},
            **{n: None for n in available_recipes(summaries=True)}}
