"""Deterministic, resumable batch streams.

Batch ``i`` is a pure function of (seed, i): the permutation of epoch ``i // batches_per_epoch``
comes from a private generator. A stream's whole state is one integer, so a resumed run
sees exactly the batches an uninterrupted run would, and global RNG state is never touched.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch.utils.data import default_collate


class BatchStream:
    def __init__(self, dataset: Sequence[Any], batch_size: int, seed: int, collate: Callable[[list], Any] = default_collate, shuffle: bool = True, drop_last: bool = False):
        if len(dataset) == 0:
            raise ValueError("BatchStream needs a non-empty dataset")
        self.dataset, self.batch_size, self.seed, self.collate, self.shuffle = dataset, batch_size, seed, collate, shuffle
        n = len(dataset)
        self.batches_per_epoch = max(1, n // batch_size) if drop_last else -(-n // batch_size)
        self.position = 0
        self._perm_epoch, self._perm = -1, None

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch != self._perm_epoch:
            n = len(self.dataset)
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(n, generator=gen) if self.shuffle else torch.arange(n)
            self._perm_epoch = epoch
        return self._perm

    def indices(self, i: int) -> torch.Tensor:
        epoch, k = divmod(i, self.batches_per_epoch)
        return self._permutation(epoch)[k * self.batch_size : (k + 1) * self.batch_size]

    def batch(self, i: int) -> Any:
        """Batch ``i``; a dataset with ``gather(indices)`` (tensors) builds it in one indexing, not item by item."""
        idx = self.indices(i)
        gather = getattr(self.dataset, "gather", None)
        return gather(idx) if gather is not None else self.collate([self.dataset[int(j)] for j in idx])

    def take(self, k: int) -> list[Any]:
        """The next ``k`` batches; advances the stream."""
        out = [self.batch(self.position + j) for j in range(k)]
        self.position += k
        return out

    def __next__(self) -> Any:
        return self.take(1)[0]

    def __iter__(self) -> "BatchStream":
        return self
