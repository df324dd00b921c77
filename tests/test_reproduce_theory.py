"""The theory reproductions (local-1d, kmixup-clusters, alpha-calibration, lipschitz) in their quick form.

Each runs through :func:`vicinal.lab.reproduce.run_reproduction` into a temporary folder: the section
must carry a verdict, reference figures that exist as non-empty PNG files, and appear in the index.
A few measured facts that the quick sizes already settle are checked too.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from vicinal.lab.reproduce import REPRODUCTIONS, run_reproduction

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
THEORY = ("local-1d", "kmixup-clusters", "alpha-calibration", "lipschitz")


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """Each theory reproduction run once, quick, into one shared folder (keeps the file fast)."""
    out = tmp_path_factory.mktemp("docs")
    texts = {name: run_reproduction(name, quick=True, out=out) for name in reversed(THEORY)}
    return out, texts


@pytest.mark.parametrize("name", THEORY)
def test_quick_section_renders_with_verdict_and_figures(name, quick_runs):
    tmp_path, texts = quick_runs
    text = texts[name]

    assert text.startswith("## ")
    assert f"`vicinal reproduce {name} --quick`" in text
    verdict = re.search(r"\*\*Verdict:\*\* (reproduced|partly reproduced|not reproduced) — (.+)", text)
    assert verdict is not None, text[:500]
    assert verdict.group(2).strip()
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", text)
    assert figures, "a theory reproduction must show at least one figure"
    for rel in figures:
        path = tmp_path / rel
        assert path.parent == tmp_path / "figures-quick"
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
    # Markdown tables: every row has as many cells as its header (a stray '|' would break this).
    for block in re.findall(r"((?:^\|.*\|\n)+)", text, flags=re.M):
        widths = {line.count("|") for line in block.strip().splitlines()}
        assert len(widths) == 1, block

    section = tmp_path / "reproductions-quick" / f"{name}.md"
    assert section.read_text() == text
    index = (tmp_path / "reproductions-quick.md").read_text()
    assert text in index
    assert "# Reproductions (quick CI versions)" in index


def test_index_keeps_registry_order_and_lists_missing(quick_runs):
    tmp_path, texts = quick_runs
    index = (tmp_path / "reproductions-quick.md").read_text()
    positions = [index.index(texts[name]) for name in THEORY]
    assert positions == sorted(positions)  # registry order, although they ran in reverse
    missing = index.split("## Not yet run")[1]
    assert "`spirals-eps`" in missing
    assert not any(f"`{name}`" in missing for name in THEORY)
    assert set(THEORY) <= set(REPRODUCTIONS)


def test_unknown_reproduction_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown reproduction 'lipschitz-x'.*local-1d"):
        run_reproduction("lipschitz-x", quick=True, out=tmp_path)


def test_local_1d_numbers(quick_runs):
    text = quick_runs[1]["local-1d"]
    # eq. (3)-(4) equals its numerical minimiser to round-off at every (n, K) row.
    rows = re.findall(r"^\| (\d+) \| (\d+) \| ([0-9.e+-]+) \| ([0-9.]+) \|$", text, flags=re.M)
    assert rows
    assert max(float(r[2]) for r in rows) < 1e-10
    # Pair weighting differs from eq. (3) as soon as K > 1.
    assert all(float(r[3]) > 1e-3 for r in rows if int(r[1]) > 1)
    # Eq. (1) with equal weights is far from the minimiser; the density barycenter is close.
    lemma = re.findall(r"^\| (\d+) \| ([0-9.e+-]+) \| ([0-9.]+) \|$", text, flags=re.M)
    assert lemma and all(float(d) < 0.05 < float(c) for _, d, c in lemma)
    # Thm IV.2: the exact variance never exceeds the upper bound 8 / K, and simulation tracks it.
    iid = _table_after(text, "**Thm IV.2")
    assert iid[0][:5] == ["K", "Var exact", "Var simulated", "lower 16/K^2", "upper 8/K"]
    for k, exact, simulated, _, upper, _ in iid[1:]:
        assert float(exact) <= float(upper) == pytest.approx(8 / int(k), abs=1e-4)
        assert float(simulated) == pytest.approx(float(exact), rel=0.15)


def test_kmixup_clusters_two_clusters_always_exact(quick_runs):
    text = quick_runs[1]["kmixup-clusters"]
    rows = re.findall(r"^\| (\d) \| \([0-9., ]+\) \| (\d+) \| (\d+) \| ([0-9.]+)% \| ([0-9.]+)% \| (\d+) \|$",
                      text, flags=re.M)
    assert rows
    for m, _, _, exact, at_least, excess in rows:
        assert float(at_least) == 100.0  # the count is a lower bound in every trial
        if m == "2":
            assert float(exact) == 100.0 and excess == "0"


def _table_after(text: str, marker: str) -> list[list[str]]:
    """Cells of the first Markdown table after ``marker`` (header row included, separator dropped)."""
    block = text.split(marker, 1)[1]
    lines = re.search(r"((?:^\|.*\|\n)+)", block, flags=re.M).group(1).strip().splitlines()
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines if not line.startswith("|---")]


def test_alpha_calibration_table(quick_runs):
    table = _table_after(quick_runs[1]["alpha-calibration"], "**one_ring**")
    header, rows = table[0], table[1:]
    ceiling = [float(v) for v in rows[-1][2:]]
    # The ceiling sqrt(E W2^2 / 4) falls as k grows: optimal matching brings partners closer.
    assert rows[-1][0] == "largest xi for any alpha" and np.all(np.diff(ceiling) < 0)
    saw_cap = saw_alpha = False
    for row in rows[:-1]:
        alpha_1, xi_1 = float(row[0]), float(row[2])
        assert xi_1 <= ceiling[0]
        for column, cell in enumerate(row[3:], start=3):
            capped = re.fullmatch(r"cap \(([0-9.]+)\)", cell)
            if capped:  # stopped at gamma: below the target and below that k's ceiling
                saw_cap = True
                assert float(capped.group(1)) < xi_1 and float(capped.group(1)) <= ceiling[column - 2]
            else:  # Algorithm 1 only ever raises alpha
                saw_alpha = True
                assert float(cell) >= alpha_1, (header[column], cell)
    assert saw_cap and saw_alpha


def test_lipschitz_mixup_bound_above_vanilla(quick_runs):
    text = quick_runs[1]["lipschitz"]
    for dataset in ("digits", "spirals"):
        block = text.split(f"**{dataset}**")[1]
        vanilla = float(re.search(r"^\| 0\.00 \(vanilla\) \| ([0-9.e+]+) \|", block, flags=re.M).group(1))
        mixup = float(re.search(r"^\| [0-9.]+ \(Mixup\) \| ([0-9.e+]+) \|", block, flags=re.M).group(1))
        assert mixup > vanilla > 0


def test_simulated_xi_agrees_with_factorised_xi_and_rejects_bad_input():
    from vicinal.alpha import perturbation_rms
    from vicinal.lab.reproduce.alpha_calibration import simulated_xi

    x = np.random.default_rng(0).normal(size=(60, 3))
    for k in (1, 8):
        xi, half = simulated_xi(x, k=k, alpha=2.0, n_pairs=4000, seed=0)
        factorised = perturbation_rms(x, k=k, alpha=2.0, n_trials=20_000, seed=1)
        assert 0 < half < 0.05 * xi
        assert abs(xi - factorised) < 3 * half + 0.02 * factorised  # the factorised one is noisy too
    with pytest.raises(ValueError, match="k must be in"):
        simulated_xi(x, k=61, alpha=1.0, n_pairs=400, seed=0)
    with pytest.raises(ValueError, match="alpha must be"):
        simulated_xi(x, k=2, alpha=0.0, n_pairs=400, seed=0)
    with pytest.raises(ValueError, match="n_pairs must be >= 2 \\* k"):
        simulated_xi(x, k=8, alpha=1.0, n_pairs=10, seed=0)
