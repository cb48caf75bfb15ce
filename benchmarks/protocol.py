"""Shared benchmark protocol: side-by-side timing, a tensor-memory tracker, and table printing.

Machines here are noisy, so every script reports ratios measured in the same run, with
the timed functions interleaved round by round; absolute times are printed for context only.
"""

from __future__ import annotations

import platform
import statistics
import time
import weakref
from typing import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode


def sync(device: torch.device | None = None) -> None:
    """Wait for queued GPU work, so that a timer around it measures it (no-op on the CPU)."""
    if (device.type == "cuda") if device is not None else torch.cuda.is_available():
        torch.cuda.synchronize(device)


def device_label(device: torch.device) -> str:
    """What a table's header says the numbers were measured on."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def interleaved_times(fns: dict[str, Callable[[], object]], rounds: int, warmup: int = 2) -> dict[str, list[float]]:
    """Run each function once per round, in turn, and return per-round wall times (s)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t0)
    return times


def median(xs: list[float]) -> float:
    return statistics.median(xs)


class PeakTensorMemory(TorchDispatchMode):
    """Peak bytes of tensor storage allocated inside the block and still alive (CPU or GPU).

    ``tracemalloc`` cannot see tensor memory, so this counts every base tensor an op returns
    and releases it when the tensor is freed (PyTorch keeps a tensor's Python object alive
    while the autograd graph holds it, so the weakref fires at the real free).
    """

    def __enter__(self):
        self.live = 0
        self.peak = 0
        return super().__enter__()

    def _release(self, nbytes: int) -> None:
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t._base is None and not t.is_sparse:
                nbytes = t.untyped_storage().nbytes()
                self.live += nbytes
                self.peak = max(self.peak, self.live)
                weakref.finalize(t, self._release, nbytes)
        return out


def peak_memory_mb(fn: Callable[[], object]) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - start) / 2**20
    with PeakTensorMemory() as tracker:
        fn()
    return tracker.peak / 2**20


def print_table(title: str, header: list[str], rows: list[list[object]]) -> str:
    cells = [header] + [[f"{c:.3g}" if isinstance(c, float) else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [f"### {title}", "| " + " | ".join(h.ljust(w) for h, w in zip(cells[0], widths)) + " |", "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells[1:]]
    text = "\n".join(lines)
    print(text, flush=True)
    return text
