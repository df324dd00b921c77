"""Seeds of independent random streams derived from one base seed: per rank, per worker, per step.

An integration with no paper: under data-parallel training (DDP) every rank, and every DataLoader
worker inside it, must draw its own lambdas and partners, and a rerun with the same base seed must
draw the same ones again. :func:`derive_seed` hashes the base seed together with integer keys
(rank, worker seed, step counter, ...) through SplitMix64 (Steele et al. 2014), so nearby keys give
unrelated seeds and ``(seed=0, rank=1)`` is not ``(seed=1, rank=0)`` as it would be with ``seed + rank``.
:class:`vicinal.MixCollate` and :class:`vicinal.lightning.Mixing` draw from generators seeded this way.
"""

from __future__ import annotations

import torch

from ._checks import check_int

_MASK64 = (1 << 64) - 1
_SEED_BITS = (1 << 63) - 1  # torch.Generator.manual_seed accepts any 64-bit value; 63 bits stay positive


def _splitmix64(value: int) -> int:
    """One SplitMix64 output for state ``value`` (Steele, Lea & Flood 2014): a bijective 64-bit mixer."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def derive_seed(seed: int, *keys: int) -> int:
    """A 63-bit seed for the stream named by ``keys`` inside the base ``seed``.

    Integration helper (no paper): hashes ``seed`` and each key in turn with SplitMix64. The same
    arguments always give the same seed; any changed key gives an unrelated one. With no keys the
    base seed is returned unchanged, so a single process seeded with ``seed`` is not affected.

    Parameters
    ----------
    seed : int
        Base seed (>= 0).
    *keys : int
        Stream coordinates, e.g. ``(rank,)``, ``(rank, worker_seed)`` or ``(rank, step)`` (each >= 0).

    Returns
    -------
    int
        A seed in [0, 2**63) for ``torch.Generator.manual_seed``.
    """
    seed = check_int("seed", seed, minimum=0)
    if not keys:
        return seed
    state = seed & _MASK64
    for position, key in enumerate(keys):
        key = check_int(f"keys[{position}]", key, minimum=0)
        state = _splitmix64(state ^ _splitmix64(key & _MASK64))
    return state & _SEED_BITS


def distributed_rank() -> int:
    """This process's rank under ``torch.distributed`` (0 when it is not initialised). Integration helper, no paper."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return 0


def rank_seed(seed: int, rank: int | None = None) -> int:
    """The base seed of rank ``rank`` (default: this process's ``torch.distributed`` rank).

    Integration helper (no paper). Rank 0 keeps ``seed`` itself, so single-process runs are
    unchanged; rank r > 0 gets ``derive_seed(seed, r)``.
    """
    rank = distributed_rank() if rank is None else check_int("rank", rank, minimum=0)
    return seed if rank == 0 else derive_seed(seed, rank)
