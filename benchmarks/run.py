"""Benchmarks of vicinal's mixing cost: ``python benchmarks/run.py [--quick] [--device cpu|cuda]``.

Runs four sections, prints a table for each and writes every number to
``benchmarks/results/mixing.json`` (see benchmarks/README.md for how to read them):

1. per-batch mixing time of every preset vs the k-Mixup Fig. 5 pseudocode and a ResNet-18 step;
2. optimal-transport matching cost per sample as k grows, exact vs entropic solvers;
3. mixing in DataLoader workers (MixCollate) vs in the training loop;
4. peak memory of each mixer at B = 128 and B = 1024.

``--quick`` shrinks every section (narrow ResNet, fewer k, one round) to finish in under a minute;
its numbers check that the suite runs, they are not the reported ones.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from collate_overlap import run_collate_overlap  # noqa: E402
from mixing_cost import TARGET_K, profile_kmixup, run_mixing_cost  # noqa: E402
from ot_scaling import LARGE_K, run_ot_scaling  # noqa: E402
from peak_memory import run_peak_memory  # noqa: E402

SECTIONS = ("mixing", "ot", "collate", "memory")


def print_table(title: str, header: list[str], rows: list[list]) -> None:
    """Print rows under a header, columns padded to their widest cell; floats with 4 significant digits."""
    cells = [[f"{c:.4g}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))


def report_mixing(result: dict) -> None:
    clock = result["setup"]["clock"]
    share = result["share_of_resnet_step"]
    rows = [[name, result["median_ms"]["wall"][name], result["median_ms"]["cpu"][name],
             f"{100 * share[name]:.3f}%" if name in share else ""] for name in result["median_ms"]["wall"]]
    print_table(f"1. Mixing time per batch (B={result['setup']['batch_size']}, 3x32x32, median ms; "
                f"ratios on the {clock} clock)", ["case", "wall ms", "cpu ms", "of ResNet step"], rows)
    print_table("   Ratios (median of per-round ratios)", ["ratio", "value"],
                [[name, value] for name, value in result["ratios"].items()])
    print_table("   Targets", ["target", "met"], [[name, met] for name, met in result["targets"].items()])
    profile = result["kmixup_profile"]
    clock = profile["setup"]["clock"]
    print_table(f"   Profile of KMixup(k={profile['setup']['k']}) against Mixup ({clock} clock)",
                ["part", "median ms", "x Mixup"],
                [[name, profile["median_ms"][clock][name], ratio] for name, ratio in profile["parts_over_mixup"].items()])


def report_ot(result: dict) -> None:
    table, ks = result["per_sample_us"], result["setup"]["ks"]
    solvers = list(table)
    rows = [[k] + [table[s][str(k)] if str(k) in table[s] else table[s][k] for s in solvers] for k in ks]
    rows.append(["exponent"] + [result["exponents"][s] for s in solvers])
    large = result.get(f"exponents_k_ge_{LARGE_K}", {})
    if large:
        rows.append([f"exp. k>={LARGE_K}"] + [large[s] for s in solvers])
    print_table(f"2. OT matching cost per sample (us, B={result['setup']['batch_size']}, "
                f"{result['setup']['clock']} clock; exponent of a log-log fit)", ["k"] + solvers, rows)
    for name, gaps in result["sinkhorn_gap"].items():
        print_table(f"   {name}: relative excess cost of the rounded plan over the optimum", ["k", "excess"],
                    [[k, gap] for k, gap in gaps.items()])
    print_table("   Where another solver becomes cheaper than the Hungarian solve", ["solver", "measured k",
                "extrapolated k"], [[s, c["measured_k"], c["extrapolated_k"]] for s, c in result["crossover"].items()])


def report_collate(result: dict) -> None:
    print_table(f"3. Training step with KMixup(k={result['setup']['k']}) (PreActResNet18 width "
                f"{result['setup']['resnet_width']}, median wall ms per step)", ["configuration", "ms/step"],
                [[name, ms] for name, ms in result["ms_per_step"].items()])


def report_memory(result: dict) -> None:
    print_table("4. Peak memory of one mixer call (MiB above the resident size before it; fresh process each)",
                ["mixer", "B", "input MiB", "peak MiB", "tracemalloc MiB", "method"],
                [[r["mixer"], r["batch_size"], r["input_mib"], r["peak_mib"], r.get("tracemalloc_peak_mib", ""),
                  r["method"]] for r in result["records"]])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one round: finishes in under a minute")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS)
    parser.add_argument("--out", default=os.path.join(HERE, "results", "mixing.json"))
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    started = time.time()
    quick = args.quick
    results = {"environment": {
        "python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
        "processor": platform.processor(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "device": args.device, "cuda_device": torch.cuda.get_device_name() if args.device == "cuda" else None,
        "quick": quick, "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None}}
    if "mixing" in args.sections:
        results["mixing"] = run_mixing_cost(rounds=3 if quick else 30, resnet_width=4 if quick else 64,
                                            resnet_repeats=1 if quick else 3, device=args.device)
        results["mixing"]["kmixup_profile"] = profile_kmixup(rounds=10 if quick else 60, device=args.device)
        report_mixing(results["mixing"])
    if "ot" in args.sections:
        results["ot"] = run_ot_scaling(
            batch_size=256 if quick else 1024, ks=(2, 16, 128) if quick else (2, 4, 8, 16, 32, 64, 128, 256, 512),
            rounds=1 if quick else 3, max_blocks=1 if quick else 4, sinkhorn_regs=(0.1,) if quick else (0.1, 0.01),
            device=args.device)
        report_ot(results["ot"])
    if "collate" in args.sections:
        results["collate"] = run_collate_overlap(n_batches=2 if quick else 8, resnet_width=2 if quick else 16,
                                                 rounds=1 if quick else 3, k=TARGET_K)
        report_collate(results["collate"])
    if "memory" in args.sections:
        names = (["Mixup", f"KMixup(k={TARGET_K})"] if quick else
                 ["Mixup"] + [f"LocalMixup({g}, {s})" for s in ("uniform", "weighted")
                              for g in ("threshold", "knn", "exponential")]
                 + [f"KMixup(k={k})" for k in (2, 8, 32, 64)])
        results["memory"] = run_peak_memory(names, (128,) if quick else (128, 1024), device=args.device)
        report_memory(results["memory"])
    results["environment"]["seconds"] = time.time() - started
    if set(args.sections) != set(SECTIONS) and os.path.exists(args.out):
        # A partial run updates its sections and keeps the others of the existing file.
        with open(args.out) as previous:
            kept = json.load(previous)
        kept_environment = kept.get("environment", {})
        kept.update(results)
        kept["environment"] = {**kept_environment, f"rerun_{'_'.join(args.sections)}": results["environment"]}
        results = kept
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as out:
        json.dump(results, out, indent=1)
    print(f"\nwrote {args.out} ({time.time() - started:.0f} s)")
    return results


if __name__ == "__main__":
    main()
