"""Section 4: peak memory of one mixer call, each measured in a fresh Python process.

Method. On the CPU, torch's allocations do not go through Python's allocator, so ``tracemalloc``
sees numpy (the float64 cost blocks handed to scipy) but not the tensors. The peak resident set
size does see both. Each (mixer, B) pair runs in its own process (``python peak_memory.py --child
...``): it builds the batch, runs the mixer once on a small batch so code paths are loaded, resets
the kernel's peak-RSS mark (``/proc/self/clear_refs``, Linux), then mixes the batch once and
reports the rise of the peak mark during the call (from its value at the reset, the resident size
then). Where the mark cannot be reset, the rise of ``resource.getrusage(...).ru_maxrss`` is used
(it can under-count if the process was larger before). RSS moves by pages and the allocator may reuse freed memory, so small values
are approximate. ``tracemalloc``'s peak is reported beside it. On CUDA the measure is
``torch.cuda.max_memory_allocated`` above the allocation before the call.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tracemalloc

BYTES_PER_MIB = 2 ** 20


def _status_kib(field: str) -> int | None:
    """A ``VmRSS`` / ``VmHWM`` line of /proc/self/status in KiB (None where there is no /proc)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process; False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def measure_in_this_process(name: str, batch_size: int, device: str) -> dict:
    """Peak memory of one call of the preset ``name`` on a fresh CIFAR-shaped batch of ``batch_size``."""
    import torch

    from mixing_cost import cifar_batch, presets

    ks = (int(name.split("=")[1].rstrip(")")),) if name.startswith("KMixup") else (2,)
    x, y = cifar_batch(batch_size, device=device)
    mixer = presets(ks, eps=float(torch.cdist(x[:8].flatten(1), x[:8].flatten(1)).median()))[name]
    warm = max(2 * ks[0], 8)
    mixer(x[:warm].clone(), y[:warm].clone(), generator=torch.Generator().manual_seed(1))
    generator = torch.Generator().manual_seed(0)
    record = {"mixer": name, "batch_size": batch_size, "device": device,
              "input_mib": x.numel() * x.element_size() / BYTES_PER_MIB}
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        mixer(x, y, generator=generator)
        torch.cuda.synchronize()
        record.update(method="torch.cuda.max_memory_allocated",
                      peak_mib=(torch.cuda.max_memory_allocated() - before) / BYTES_PER_MIB)
        return record
    tracemalloc.start()
    if _reset_peak_rss() and _status_kib("VmHWM") is not None:
        # The mark itself as the baseline: it only rises until the next reset, so the rise is >= 0.
        # (VmRSS read a moment later could sit a few pages above it and give a small negative "peak".)
        before = _status_kib("VmHWM")
        mixer(x, y, generator=generator)
        record.update(method="VmHWM after clear_refs", peak_mib=(_status_kib("VmHWM") - before) / 1024)
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        mixer(x, y, generator=generator)
        record.update(method="ru_maxrss delta",
                      peak_mib=(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
    record["tracemalloc_peak_mib"] = tracemalloc.get_traced_memory()[1] / BYTES_PER_MIB
    tracemalloc.stop()
    return record


def run_peak_memory(names: list[str], batch_sizes: tuple[int, ...] = (128, 1024), *, device: str = "cpu") -> dict:
    """Peak memory of each preset at each batch size, each in a fresh subprocess.

    Parameters
    ----------
    names : list of str
        Preset names of :func:`mixing_cost.presets` ("Mixup", "LocalMixup(knn, weighted)", "KMixup(k=32)", ...).
    batch_sizes : tuple of int
        Batch sizes B.
    device : {"cpu", "cuda"}
        Where the batch lives.

    Returns
    -------
    dict
        ``records``: one dict per (mixer, B) with ``peak_mib``, ``input_mib`` and the method used.
    """
    records = []
    here = os.path.dirname(os.path.abspath(__file__))
    for batch_size in batch_sizes:
        for name in names:
            done = subprocess.run([sys.executable, os.path.join(here, "peak_memory.py"), "--child", name,
                                   str(batch_size), device], capture_output=True, text=True, cwd=here)
            if done.returncode != 0:
                raise RuntimeError(f"peak-memory child for {name}, B={batch_size} failed:\n{done.stderr}")
            records.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {"setup": {"batch_sizes": list(batch_sizes), "device": device}, "records": records}


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] != "--child":
        sys.exit("usage: python peak_memory.py --child MIXER_NAME BATCH_SIZE DEVICE (run by run_peak_memory)")
    import torch

    torch.set_num_threads(1)
    print(json.dumps(measure_in_this_process(sys.argv[2], int(sys.argv[3]), sys.argv[4])))
