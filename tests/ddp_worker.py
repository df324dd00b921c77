"""One rank of the two-process DDP run of tests/test_ddp.py (gloo on the CPU): k-Mixup training + streaming metric.

Usage: python ddp_worker.py RANK WORLD_SIZE INIT_FILE OUT_FILE. Not a test module (no test_ prefix).
"""

import sys

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset

import vicinal as v

FEATURES, CLASSES, N, BATCH, STEPS = 5, 3, 64, 16, 2


def main(rank: int, world: int, init_file: str, out_file: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    # Two runs from scratch in the same processes: the second is the rerun (saves two process starts).
    torch.save([train_and_evaluate(rank, world) for _ in range(2)], out_file)
    dist.destroy_process_group()


def train_and_evaluate(rank: int, world: int) -> dict:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(N, FEATURES, generator=g), torch.randint(0, CLASSES, (N,), generator=g)
    shard_x, shard_y = x[rank::world], y[rank::world]  # what a DistributedSampler without shuffling gives

    torch.manual_seed(0)  # same initial weights on every rank (DDP also broadcasts rank 0's)
    model = DistributedDataParallel(torch.nn.Linear(FEATURES, CLASSES))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    mixing = v.lightning.Mixing(v.KMixup(alpha=1.0, k=4, num_classes=CLASSES), seed=7)
    draws = []
    for _ in range(STEPS):
        for start in range(0, shard_x.shape[0], BATCH):
            mixed = mixing((shard_x[start:start + BATCH], shard_y[start:start + BATCH]))  # rank from dist
            draws.append((mixed.lam.clone(), mixed.partner.clone()))
            loss = v.mixup_loss(model(mixed.inputs), mixed)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    collate = v.MixCollate(v.Mixup(alpha=1.0, num_classes=CLASSES), seed=7)
    collate_lam = next(iter(DataLoader(TensorDataset(shard_x, shard_y), batch_size=BATCH, collate_fn=collate))).lam

    metric = v.metrics.Calibration(n_bins=5, from_logits=True)
    with torch.no_grad():
        logits = model(shard_x)
    # Uneven updates per rank (rank 1 one sample short) exercise the padded gather.
    kept = shard_x.shape[0] - rank
    for chunk_logits, chunk_y in zip(logits[:kept].split(7), shard_y[:kept].split(7)):
        metric.update(chunk_logits, chunk_y)
    return {"draws": draws, "weights": [p.detach().clone() for p in model.parameters()],
            "metrics": metric.compute(), "logits": logits[:kept], "targets": shard_y[:kept], "collate_lam": collate_lam}


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4])
