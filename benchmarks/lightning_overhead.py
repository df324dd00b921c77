"""Per-step cost of vicinal.lightning.Mixing against mixing by hand in a Lightning training_step.

Every variant trains the same MLP (3072 -> 512 -> 10) on CIFAR-shaped batches (B = 128, synthetic)
with a real ``lightning.Trainer`` on the CPU:

* ``erm``: cross-entropy, no mixing (the floor);
* ``hand/<mixer>``: ``mixer(x, y, generator=g)`` in ``training_step`` with one generator for the run;
* ``mixing/<mixer>``: ``self.mixing(batch, self)`` (re-seeds per batch from (seed, rank, n) and logs
  lambda, plus the kept-pair share for Local Mixup, through Lightning's ``self.log``);
* ``nolog/<mixer>``: the same with ``Mixing(..., log=False)``: what the integration itself adds.

Also, outside Lightning, the added cost of one call: ``Mixing((x, y))`` (log off) against
``mixer(x, y, generator=g)``, interleaved call by call, median difference in microseconds.

Time per step is the main thread's CPU time from ``on_train_batch_start`` to ``on_train_batch_end``
(forward, loss, backward, optimizer step, logging), the first steps of each fit dropped. Variants run
in turn, once per round; ratios are medians of per-round ratios of the rounds' median step times.

    python benchmarks/lightning_overhead.py [--rounds 5] [--steps 40] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
import warnings

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

import vicinal

BATCH, FEATURES, CLASSES, WARMUP_STEPS = 128, 3 * 32 * 32, 10, 3
MIXERS = {
    "Mixup": lambda: vicinal.Mixup(alpha=1.0, num_classes=CLASSES),
    "LocalMixup(kNN 8)": lambda: vicinal.LocalMixup(alpha=1.0, graph=vicinal.KNN(n_neighbors=8), num_classes=CLASSES),
}


class _Net(L.LightningModule):
    def __init__(self, mode: str, mixer_name: str | None):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(FEATURES, 512), torch.nn.ReLU(), torch.nn.Linear(512, CLASSES))
        self.mode = mode
        if mode == "hand":
            self.mixer, self.generator = MIXERS[mixer_name](), torch.Generator().manual_seed(0)
        elif mode in ("mixing", "nolog"):
            self.mixing = vicinal.lightning.Mixing(MIXERS[mixer_name](), seed=0, log=mode == "mixing")

    def training_step(self, batch, batch_idx):
        if self.mode == "erm":
            x, y = batch
            return torch.nn.functional.cross_entropy(self.net(x), y)
        if self.mode == "hand":
            mixed = self.mixer(batch[0], batch[1], generator=self.generator)
        else:
            mixed = self.mixing(batch, self)
        return vicinal.mixup_loss(self.net(mixed.inputs), mixed)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


class _StepClock(L.Callback):
    def __init__(self):
        self.seconds: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._start = time.thread_time()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.seconds.append(time.thread_time() - self._start)


def _median_step(mode: str, mixer_name: str | None, loader: DataLoader, steps: int, root: str) -> float:
    clock = _StepClock()
    trainer = L.Trainer(accelerator="cpu", max_steps=steps, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[clock],
                        default_root_dir=root)
    trainer.fit(_Net(mode, mixer_name), loader)
    return statistics.median(clock.seconds[WARMUP_STEPS:])


def _call_overhead_us(x: torch.Tensor, y: torch.Tensor, calls: int) -> dict[str, float]:
    """Median extra thread-CPU microseconds of a Mixing call (log off) over the bare mixer call, per mixer."""
    extra = {}
    for name, make in MIXERS.items():
        mixer, generator = make(), torch.Generator().manual_seed(0)
        mixing = vicinal.lightning.Mixing(make(), seed=0, log=False)
        differences = []
        for _ in range(calls):
            start = time.thread_time()
            mixer(x, y, generator=generator)
            middle = time.thread_time()
            mixing((x, y))
            differences.append((time.thread_time() - middle) - (middle - start))
        extra[name] = 1e6 * statistics.median(differences)
    return extra


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--root", default="results/lightning_overhead")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)  # one banner per fit otherwise
    warnings.filterwarnings("ignore", module="lightning")
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(BATCH * 8, FEATURES, generator=g), torch.randint(0, CLASSES, (BATCH * 8,), generator=g))
    loader = DataLoader(data, batch_size=BATCH, shuffle=False, drop_last=True)
    variants = [("erm", None)] + [(mode, name) for name in MIXERS for mode in ("hand", "mixing", "nolog")]
    rounds = {f"{mode}/{name}" if name else mode: [] for mode, name in variants}
    for _ in range(args.rounds):
        for mode, name in variants:
            rounds[f"{mode}/{name}" if name else mode].append(_median_step(mode, name, loader, args.steps, args.root))
    def over_hand(mode, name):
        return statistics.median(m / h for m, h in zip(rounds[f"{mode}/{name}"], rounds[f"hand/{name}"]))

    result = {"ms_per_step": {key: 1e3 * statistics.median(values) for key, values in rounds.items()},
              "integration_over_hand": {name: over_hand("mixing", name) for name in MIXERS},
              "integration_without_logging_over_hand": {name: over_hand("nolog", name) for name in MIXERS},
              "call_overhead_us": _call_overhead_us(data.tensors[0][:BATCH], data.tensors[1][:BATCH], args.calls),
              "settings": vars(args)}
    print(f"{'variant':<28} {'ms/step (CPU)':>14}")
    for key, value in result["ms_per_step"].items():
        print(f"{key:<28} {value:>14.3f}")
    for name in MIXERS:
        print(f"{name}: Mixing / by hand {result['integration_over_hand'][name]:.4f}, "
              f"Mixing(log=False) / by hand {result['integration_without_logging_over_hand'][name]:.4f}, "
              f"one call outside Lightning +{result['call_overhead_us'][name]:.1f} us")
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=1))
