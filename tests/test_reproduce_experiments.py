"""Quick versions of the training reproductions (kmixup-toys, kmixup-uci, moons-rff, digits).

Each runs its tiny protocol into a temporary directory: the section must render with the quick-run
verdict, name the paper's claim, and link figures that exist as non-empty PNG files. Running a second
time must reuse the stored runs (the result store makes reproductions resumable).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vicinal.lab.reproduce import REPRODUCTIONS, run_reproduction
from vicinal.lab.store import ResultStore

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EXPERIMENTS = {
    "kmixup-toys": ("Table 9", {"kmixup_toys_one_ring.png", "kmixup_toys_boundaries_one_ring.png"}),
    "kmixup-uci": ("Table 4", {"kmixup_uci_iris.png"}),
    "moons-rff": ("App. B.3", {"moons_rff_curves.png", "moons_rff_reliability.png"}),
    "digits": ("Tables 6-7", {"digits_noise.png", "digits_fgsm.png", "digits_margin.png"}),
}


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("repro") / "docs"


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_quick_section_renders_with_figures(name, out):
    claim_source, expected_figures = EXPERIMENTS[name]
    assert name in REPRODUCTIONS
    text = run_reproduction(name, quick=True, out=out)

    assert text.startswith("## ")
    assert f"`vicinal reproduce {name} --quick`" in text
    assert "**Verdict:** not assessed (quick run)" in text
    assert claim_source in text
    assert "| " in text  # a Markdown table of our numbers
    assert (out / "reproductions-quick" / f"{name}.md").read_text() == text

    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert {Path(link).name for link in linked} == expected_figures
    for link in linked:
        png = out / link
        assert png.is_file()
        data = png.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000


@pytest.mark.parametrize("name", ["kmixup-uci"])
def test_second_run_reuses_stored_runs(name, out):
    run_reproduction(name, quick=True, out=out)
    store_path = out.parent / "results" / "reproduce" / f"{name}-quick" / "results.sqlite"
    with ResultStore(store_path) as store:
        before = {row.key: row.finished_at for row in store.rows()}
    assert before
    run_reproduction(name, quick=True, out=out)
    with ResultStore(store_path) as store:
        after = {row.key: row.finished_at for row in store.rows()}
    assert after == before
