"""Issue 17: the device loop (``vicinal.lab.device_loop``) with PreAct ResNet-18 on CIFAR-shaped data.

``python benchmarks/device_loop.py --device cuda`` (GPU) or ``--quick`` (CPU smoke run, seconds).

Per batch size (128, 512): images/s of ERM and of every preset (Mixup, Local Mixup kNN, k-Mixup
k = 2..32, CutMix) through the device loop (data resident, crop + flip on the device, bf16 autocast
on CUDA); the mixing share of a step (one mixer call on a device batch / one ERM step); peak memory
(CUDA: ``torch.cuda.max_memory_allocated`` per case; CPU: not measured here, see section 4 of run.py);
host synchronisations per step (CUDA: counted with ``torch.cuda.set_sync_debug_mode``); the projected
wall time of a CIFAR-10 run (200 epochs x 50 000 images) and of every shipped recipe that trains PreAct
ResNet-18 (``table_projections``); ERM through the device loop against a plain DataLoader loop (float
batches on the host, copied per step, ``loss.item()`` per step); and Mixup through the loader loop
(``vicinal.lab.loader_loop``: crop + flip and MixCollate in ``loader_workers`` DataLoader workers, pinned
non-blocking copies, one loss read per epoch).
Cases run in interleaved rounds (timing.py); ratios are medians of per-round ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from timing import default_clock, median, paired_ratio, time_interleaved  # noqa: E402

import vicinal as v  # noqa: E402
from vicinal.lab.device_loop import DeviceLoop, crop_flip, mixing_step, model_inputs  # noqa: E402
from vicinal.lab.loader_loop import LoaderLoop, collated_step  # noqa: E402
from vicinal.lab.models import PreActResNet18  # noqa: E402

NUM_CLASSES = 10
CIFAR_TRAIN, TABLE_EPOCHS = 50_000, 200
TARGET_SHARE, TARGET_SPEEDUP = 0.02, 2.0


def presets(ks, *, check_finite: bool = True) -> dict:
    """ERM (None) and every preset; ``check_finite=False`` as the trainer builds them on CUDA (no per-step host read)."""
    common = dict(num_classes=NUM_CLASSES, check_finite=check_finite)
    mixers = {"ERM": None, "Mixup": v.Mixup(**common),
              "LocalMixup(knn)": v.LocalMixup(graph=v.KNN(n_neighbors=8), **common)}
    mixers.update({f"KMixup(k={k})": v.KMixup(k=k, **common) for k in ks})
    mixers["CutMix"] = v.CutMix(**common)
    return mixers


def count_syncs(fn, device: torch.device) -> int | None:
    """Host synchronisations ``fn`` makes on CUDA (sync debug mode warnings); None on the CPU."""
    if device.type != "cuda":
        return None
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fn()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def run_device_loop(*, batch_sizes=(128, 512), ks=(2, 4, 8, 16, 32), width: int = 64, steps: int = 20,
                    rounds: int = 5, device: str = "cpu", compile_model: bool = False, loader_workers: int = 2,
                    seed: int = 0) -> dict:
    """Time ``steps`` training steps per case and batch size; return the record described in the module doc."""
    device = torch.device(device)
    clock = default_clock(device)
    cuda = device.type == "cuda"
    g = torch.Generator().manual_seed(seed)
    n = steps * max(batch_sizes)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, NUM_CLASSES, (n,), generator=g)
    x = images.float() / 255
    torch.manual_seed(seed)
    model = PreActResNet18(NUM_CLASSES, width=width).to(device, memory_format=torch.channels_last).train()
    forward = torch.compile(model) if compile_model else model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    mixers = presets(ks, check_finite=not cuda)
    record = {"setup": {"device": str(device), "width": width, "steps": steps, "rounds": rounds, "clock": clock,
                        "compile": compile_model, "autocast_bf16": cuda, "loader_workers": loader_workers, "batch_sizes": list(batch_sizes),
                        "peak_memory": "torch.cuda.max_memory_allocated" if cuda else "not measured on the CPU"},
              "per_batch_size": {}}
    for batch_size in batch_sizes:
        subset = steps * batch_size
        loops = {name: DeviceLoop(mixing_step(forward, mixer), x[:subset], labels[:subset], batch_size=batch_size,
                                  device=device, pad=4, flip=True,
                                  augment_generator=torch.Generator(device=device).manual_seed(seed))
                 for name, mixer in mixers.items()}
        mix_generator, data_generator = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
        cases = {name: (lambda loop=loop: float(loop.epoch(optimizer, data_generator, mix_generator)))
                 for name, loop in loops.items()}
        host_x, host_y = x[:subset], labels[:subset]
        cases["plain DataLoader, ERM"] = lambda: plain_epoch(forward, optimizer, host_x, host_y, batch_size, device)
        loader_loop = LoaderLoop(collated_step(forward), host_x, host_y, batch_size=batch_size, mixer=mixers["Mixup"],
                                 device=device, workers=loader_workers, pad=4, flip=True, augment_seed=seed,
                                 channels_last=True)
        cases["DataLoader + MixCollate, Mixup"] = lambda: float(loader_loop.epoch(optimizer, data_generator, 0))
        batch = model_inputs(crop_flip(images[:batch_size].to(device), generator=torch.Generator(device=device)
                                       .manual_seed(seed)), channels_last=True)
        batch_labels = labels[:batch_size].to(device)
        mix_cases = {f"mix {name}": (lambda m=mixer: m(batch, batch_labels, generator=mix_generator))
                     for name, mixer in mixers.items() if mixer is not None}
        seconds = time_interleaved({**cases, **mix_cases}, rounds=rounds, warmup=1, device=device)[clock]
        step_s = {name: median(seconds[name]) / steps for name in cases}
        images_per_s = {name: batch_size / s for name, s in step_s.items()}
        mix_share = {name[4:]: median(seconds[name]) / step_s["ERM"] for name in mix_cases}
        peak = {}
        syncs = {}
        for name, loop in loops.items():
            if cuda:
                torch.cuda.synchronize(device)
                torch.cuda.reset_peak_memory_stats(device)
                cases[name]()
                peak[name] = torch.cuda.max_memory_allocated(device) / 2 ** 20
            one_step = DeviceLoop(loop.step, x[:batch_size], labels[:batch_size], batch_size=batch_size,
                                  device=device, pad=4, flip=True, augment_generator=loop.augment_generator)
            synced = count_syncs(lambda: one_step.epoch(optimizer, data_generator, mix_generator), device)
            if synced is not None:
                syncs[name] = synced
        record["per_batch_size"][str(batch_size)] = {
            "images_per_s": images_per_s, "step_ms": {k: 1e3 * s for k, s in step_s.items()},
            "mixing_share_of_erm_step": mix_share,
            "table_hours_per_run": {name: CIFAR_TRAIN * TABLE_EPOCHS / ips / 3600 for name, ips in images_per_s.items()},
            "device_loop_over_plain_loader": paired_ratio(seconds["plain DataLoader, ERM"], seconds["ERM"]),
            "peak_memory_mib": peak, "host_syncs_per_step": syncs,
            "targets": {"every mixing share <= 2%": all(s <= TARGET_SHARE for s in mix_share.values()),
                        "device loop >= 2x plain loader": paired_ratio(seconds["plain DataLoader, ERM"],
                                                                       seconds["ERM"]) >= TARGET_SPEEDUP},
        }
    return record


#: Training-set sizes and image sides of the recipes' data sets (the distributed splits).
TRAIN_IMAGES = {"cifar10": (50_000, 32), "cifar100": (50_000, 32), "svhn": (73_257, 32), "tiny_imagenet": (100_000, 64)}


def table_projections(per_batch_size: dict, recipes_dir=None) -> dict:
    """Projected training hours of each shipped recipe that trains PreAct ResNet-18, from measured images/s.

    ``per_batch_size``: batch size (str) -> preset name -> images/s, as measured by :func:`run_device_loop`.
    Each cell's seeds x epochs x training images at the rate of its preset (k-Mixup at the nearest measured k;
    Local Mixup at the kNN preset's rate), with convolution cost taken to grow with the image area (Tiny
    ImageNet's 64 x 64 images: 4x). Evaluation (test metrics, FGSM, noise) is not included. Recipes whose
    model differs, or whose batch size was not measured, are listed under ``not_projected`` with the reason.
    """
    from vicinal.lab.recipes import available_recipes, load_recipe

    kwargs = {} if recipes_dir is None else {"directory": recipes_dir}
    out, skipped = {}, {}
    for name in available_recipes(**kwargs):
        recipe = load_recipe(name, **kwargs)
        run = recipe.run
        if run["model"] != "preact_resnet18" or recipe.dataset not in TRAIN_IMAGES:
            skipped[name] = f"model {run['model']} on {recipe.dataset} is not the benchmarked network"
            continue
        if str(run["batch_size"]) not in per_batch_size:
            skipped[name] = f"batch size {run['batch_size']} was not measured"
            continue
        images_per_s = per_batch_size[str(run["batch_size"])]
        measured_ks = sorted(int(case[9:-1]) for case in images_per_s if case.startswith("KMixup(k="))
        images, side = TRAIN_IMAGES[recipe.dataset]
        seconds = 0.0
        for _, _, settings in recipe.cells():
            method = settings["method"]
            if method == "kmixup":
                k = min(measured_ks, key=lambda m: abs(m - settings["k"]))
                case = f"KMixup(k={k})"
            else:
                case = {"erm": "ERM", "mixup": "Mixup", "local_mixup": "LocalMixup(knn)"}[method]
            seconds += recipe.seeds * run["epochs"] * images * (side / 32) ** 2 / images_per_s[case]
        out[name] = {"runs": recipe.seeds * len(recipe.cells()), "batch_size": run["batch_size"],
                     "hours": seconds / 3600}
    return {"projected": out, "not_projected": skipped}


def plain_epoch(model, optimizer, x, y, batch_size: int, device) -> float:
    """ERM through a plain DataLoader over host float tensors: crop/flip on the host, a copy and a read per step."""
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch_size, shuffle=True,
                                         drop_last=True, generator=torch.Generator().manual_seed(0))
    total = 0.0
    augment = torch.Generator().manual_seed(0)
    for xb, yb in loader:
        xb = crop_flip(xb, generator=augment).to(device).contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16,
                            enabled=torch.device(device).type == "cuda"):
            loss = F.cross_entropy(model(xb), yb.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total


def report(record: dict) -> None:
    from run import print_table

    for batch_size, r in record["per_batch_size"].items():
        rows = [[name, ips, r["step_ms"][name], f"{100 * r['mixing_share_of_erm_step'][name]:.3f}%"
                 if name in r["mixing_share_of_erm_step"] else "", r["table_hours_per_run"][name],
                 r["peak_memory_mib"].get(name, ""), r["host_syncs_per_step"].get(name, "")]
                for name, ips in r["images_per_s"].items()]
        print_table(f"Device loop, PreActResNet18 width {record['setup']['width']}, B={batch_size}, "
                    f"{record['setup']['device']} ({record['setup']['clock']} clock)",
                    ["case", "images/s", "ms/step", "mixing share", "h per 200-epoch run", "peak MiB", "syncs/step"],
                    rows)
        print(f"device loop / plain DataLoader (ERM): {r['device_loop_over_plain_loader']:.3g}x; targets {r['targets']}")
    tables = record["table_projections"]
    if tables["projected"]:
        print_table("Projected training time of the recipes (one device, runs in sequence, evaluation not included)",
                    ["recipe", "runs", "batch", "hours"],
                    [[name, t["runs"], t["batch_size"], t["hours"]] for name, t in tables["projected"].items()])
    for name, why in tables["not_projected"].items():
        print(f"  {name}: not projected ({why})")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--quick", action="store_true", help="tiny sizes (width 4, B 16/32, k 2/4): a smoke run")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "device_loop.json"))
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    started = time.time()
    if args.quick:
        record = run_device_loop(batch_sizes=(16, 32), ks=(2, 4), width=4, steps=2, rounds=1, device=args.device,
                                 compile_model=args.compile, loader_workers=0)
    else:
        record = run_device_loop(device=args.device, compile_model=args.compile)
    record["table_projections"] = table_projections({b: r["images_per_s"] for b, r in record["per_batch_size"].items()})
    record["environment"] = {"torch": torch.__version__, "quick": args.quick, "seconds": time.time() - started,
                             "cuda_device": torch.cuda.get_device_name() if args.device == "cuda" else None,
                             "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    report(record)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as out:
        json.dump(record, out, indent=1)
    return record


if __name__ == "__main__":
    main()
