"""Smoke tests of benchmarks/: every section runs on tiny inputs and returns well-formed records.

No timing is asserted (timings belong to ``python benchmarks/run.py``). The Fig. 5 baseline is
also checked against vicinal's matching: on the same block, with the squared cost, both reach the
same optimal total cost; with the figure's unsquared cost the matching can be worse in squared cost.
"""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from vicinal.lab.recipes import RECIPES_DIR
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import collate_overlap  # noqa: E402
import mixing_cost  # noqa: E402
import ot_scaling  # noqa: E402
import peak_memory  # noqa: E402
import run  # noqa: E402
from fig5_baseline import fig5_kmixup, fig5_matching  # noqa: E402
from timing import paired_ratio, time_interleaved  # noqa: E402

import vicinal  # noqa: E402


def squared_cost(x, partner_x, partner):
    return float(((x.double() - partner_x.double()[partner]) ** 2).sum())


def test_time_interleaved_spreads_slow_cases_and_keeps_both_clocks():
    calls = []
    seconds = time_interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                               rounds=4, warmup=0, repeats={"b": 2})
    assert calls == ["a", "b", "a", "a", "b", "a"]
    assert set(seconds) == {"wall", "cpu"} and len(seconds["wall"]["a"]) == 4 and len(seconds["cpu"]["b"]) == 2
    assert paired_ratio([2.0, 4.0], [1.0, 1.0]) == 3.0
    with pytest.raises(ValueError, match="unknown cases"):
        time_interleaved({"a": lambda: None}, rounds=1, repeats={"c": 1})


def test_mixing_cost_record():
    result = mixing_cost.run_mixing_cost(batch_size=64, ks=(2,), rounds=1, resnet_width=2, resnet_repeats=1)
    names = set(result["median_ms"]["cpu"])
    assert {"Mixup", "KMixup(k=2)", "KMixup(k=32)", "Fig5 baseline(k=32)", "ResNet step", "CutMix",
            "from_timm(recipe)"} <= names
    assert {"CutMix / Mixup", "from_timm(recipe) / Mixup"} <= set(result["ratios"])
    assert sum(name.startswith("LocalMixup") for name in names) == 6
    assert all(math.isfinite(r) and r > 0 for r in result["ratios"].values())
    assert all(isinstance(met, bool) for met in result["targets"].values())
    assert set(result["share_of_resnet_step"]) == names - {"ResNet step", "Fig5 baseline(k=32)",
                                                           "KMixup(k=32, two batches)"}


def test_kmixup_profile_record():
    result = mixing_cost.profile_kmixup(batch_size=64, k=32, rounds=1)
    assert result["parts_over_mixup"]["Mixup call"] == 1.0
    assert {"OT pairing", "Hungarian solves", "batched product alone"} <= set(result["median_ms"]["cpu"])


def test_ot_scaling_record():
    pytest.importorskip("ot")
    result = ot_scaling.run_ot_scaling(batch_size=16, ks=(2, 4, 8), rounds=1, max_blocks=1, sinkhorn_regs=(0.5,))
    assert set(result["per_sample_us"]) == {"pairing", "hungarian", "emd", "sinkhorn(0.5)"}
    assert all(len(row) == 3 for row in result["per_sample_us"].values())
    assert all(math.isfinite(p) for p in result["exponents"].values())
    assert result["exponents_k_ge_32"] == {}  # no k >= 32 here
    assert all(gap >= -1e-12 for gap in result["sinkhorn_gap"]["sinkhorn(0.5)"].values())  # never below the optimum
    assert set(result["crossover"]) == {"emd", "sinkhorn(0.5)"}


def test_fit_exponent_and_crossover():
    ks = [2, 4, 8, 16]
    assert ot_scaling.fit_exponent(ks, [3.0 * k ** 2 for k in ks]) == pytest.approx(2.0)
    crossing = ot_scaling.crossover(ks, [k ** 2 for k in ks], [100.0 * k for k in ks])
    assert crossing == {"measured_k": None, "extrapolated_k": pytest.approx(100.0)}
    assert ot_scaling.crossover(ks, [1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 0.5, 0.5])["measured_k"] == 8
    # Slopes a hair apart put the crossing beyond float range: no crossing, not an OverflowError.
    nearly_parallel = ot_scaling.crossover(ks, [1.0 * k for k in ks], [1e5 * k ** (1 - 1e-9) for k in ks])
    assert nearly_parallel == {"measured_k": None, "extrapolated_k": None}


def test_collate_overlap_record():
    result = collate_overlap.run_collate_overlap(batch_size=64, n_batches=2, worker_counts=(1,), resnet_width=2,
                                                 rounds=1)
    assert set(result["ms_per_step"]) == {"ERM, workers=0", "in-loop, workers=0", "in-loop, workers=1",
                                          "collate, workers=1"}
    assert all(ms > 0 for ms in result["ms_per_step"].values())


def test_peak_memory_record_in_this_process():
    record = peak_memory.measure_in_this_process("Mixup", 8, "cpu")
    assert record["mixer"] == "Mixup" and record["batch_size"] == 8 and record["input_mib"] > 0
    assert record["peak_mib"] >= 0 and record["method"] in ("VmHWM after clear_refs", "ru_maxrss delta")


def test_run_prints_a_table(capsys):
    run.print_table("title", ["a", "b"], [["x", 1.23456], ["yy", 2]])
    out = capsys.readouterr().out
    assert "title" in out and "1.235" in out and "yy" in out


@pytest.mark.parametrize("batch_size", [2, 8, 24])
def test_fig5_squared_matches_vicinal_total_cost(batch_size):
    """One block holding the whole batch: vicinal and Fig. 5 (squared cost) reach the same optimum."""
    g = torch.Generator().manual_seed(batch_size)
    x, partner_x = torch.randn(batch_size, 3, 4, 4, generator=g), torch.randn(batch_size, 3, 4, 4, generator=g)
    ours = vicinal.OptimalTransportPairing(batch_size)(x, partner_x, generator=g)
    fig5 = torch.from_numpy(fig5_matching(x, partner_x, batch_size, squared=True))
    assert squared_cost(x, partner_x, ours) == pytest.approx(squared_cost(x, partner_x, fig5), rel=1e-9)


def test_fig5_unsquared_cost_can_match_differently():
    """The figure's unsquared distance picks a matching of higher squared cost on this block."""
    x = torch.tensor([[3.0, 2.0], [2.0, 1.0], [3.0, 1.0]])
    partner_x = torch.tensor([[1.0, 4.0], [1.0, 1.0], [3.0, 3.0]])
    unsquared = torch.from_numpy(fig5_matching(x, partner_x, 3))
    squared = torch.from_numpy(fig5_matching(x, partner_x, 3, squared=True))
    assert squared_cost(x, partner_x, squared) == 13.0
    assert squared_cost(x, partner_x, unsquared) == 15.0


def test_fig5_kmixup_mixes_with_one_lambda():
    x1, x2 = torch.zeros(4, 2), torch.ones(4, 2)
    y1 = torch.nn.functional.one_hot(torch.tensor([0, 1, 0, 1]), 2).float()
    mixed_x, mixed_y = fig5_kmixup(x1, y1, x2, y1, 2, 1.0, np.random.default_rng(0))
    lam = 1 - float(mixed_x[0, 0])
    assert torch.allclose(mixed_x, torch.full((4, 2), 1 - lam)) and mixed_y.sum(1).allclose(torch.ones(4))


def test_ensemble_speed_records_agreeing_runs_both_ways():
    """The issue-5 benchmark on tiny sizes: a row per method whose batched members match the single runs."""
    import ensemble_speed

    row = ensemble_speed.compare_method("local_mixup", epochs=1, n_sequential=2, n_members=3, rounds=2)
    assert row["rounds"] == 2 and len(row["per_round"]) == 2 and row["sequential_runs"] == 2
    assert row["speedup_wall"] > 0 and row["steps_per_run"] > 0 and row["peak_rss_mib"] > 0
    assert row["max_test_nll_gap"] < 1e-4  # member m of the batch is trainer.train(config_m)
    sweep = ensemble_speed.fig3_sweep(epochs=1, seeds=2)
    assert [point["eps"] for point in sweep["per_eps"]] == list(ensemble_speed.FIG3_EPS)
    assert all(0.0 <= point["mean_test_error"] <= 1.0 for point in sweep["per_eps"])


def test_device_loop_record_at_tiny_sizes(tmp_path):
    """Issue 17's device-loop section on the CPU (the GPU run is `--device cuda`): every case and field."""
    import device_loop

    record = device_loop.main(["--quick", "--out", str(tmp_path / "device_loop.json")])
    assert (tmp_path / "device_loop.json").exists() and set(record["per_batch_size"]) == {"16", "32"}
    row = record["per_batch_size"]["16"]
    assert set(row["images_per_s"]) == {"ERM", "Mixup", "LocalMixup(knn)", "KMixup(k=2)", "KMixup(k=4)", "CutMix",
                                        "plain DataLoader, ERM", "DataLoader + MixCollate, Mixup"}
    assert set(row["mixing_share_of_erm_step"]) == set(row["images_per_s"]) - {"ERM", "plain DataLoader, ERM",
                                                                                "DataLoader + MixCollate, Mixup"}
    assert all(math.isfinite(x) and x > 0 for x in row["images_per_s"].values())
    hours = row["table_hours_per_run"]["ERM"]
    assert hours == pytest.approx(50_000 * 200 / row["images_per_s"]["ERM"] / 3600)
    assert row["peak_memory_mib"] == {} and row["host_syncs_per_step"] == {}  # CUDA-only measures
    # The quick run measures batch 16 and 32 only: no recipe (batch 128) is projected from it, each says why.
    assert record["table_projections"]["projected"] == {}
    assert "batch size 128 was not measured" in record["table_projections"]["not_projected"]["kmixup-table10-cifar10"]


def test_table_projection_adds_each_cell_at_its_presets_rate(tmp_path):
    """Hand count: a recipe of ERM + 1-mixup (2 alphas) + k-mixup (k = 3, 40) on CIFAR-10 and one on Tiny ImageNet."""
    import device_loop

    recipe = (RECIPES_DIR / "kmixup-table10-cifar10.toml").read_text()
    (tmp_path / "small.toml").write_text(
        recipe.replace("seeds = 20", "seeds = 3").replace("epochs = 200", "epochs = 10")
        .split("[paper]")[0].replace("grid = { alpha = [0.05, 0.1, 0.2, 0.5, 1.0, 10.0, 100.0] }",
                                     "grid = { alpha = [0.5, 1.0] }")
        .replace("grid = { k = [2, 4, 8, 16, 32], alpha = [0.05, 0.1, 0.2, 0.5, 1.0, 10.0, 100.0] }",
                 "grid = { k = [3, 40], alpha = [1.0] }") + "[paper]\n")
    (tmp_path / "tiny.toml").write_text((tmp_path / "small.toml").read_text().replace('"cifar10"', '"tiny_imagenet"'))
    (tmp_path / "lenet.toml").write_text((tmp_path / "small.toml").read_text().replace('"preact_resnet18"', '"lenet"'))
    rates = {"ERM": 1000.0, "Mixup": 800.0, "KMixup(k=2)": 500.0, "KMixup(k=32)": 250.0}
    result = device_loop.table_projections({"128": rates}, recipes_dir=tmp_path)
    # k = 3 runs at the k = 2 rate, k = 40 at the k = 32 rate; 3 seeds x 10 epochs x 50 000 images each.
    per_image = 1 / 1000 + 2 / 800 + 1 / 500 + 1 / 250
    assert result["projected"]["small"]["hours"] == pytest.approx(3 * 10 * 50_000 * per_image / 3600)
    assert result["projected"]["small"]["runs"] == 3 * 5
    assert result["projected"]["tiny"]["hours"] == pytest.approx(3 * 10 * 100_000 * 4 * per_image / 3600)
    assert "not the benchmarked network" in result["not_projected"]["lenet"]
