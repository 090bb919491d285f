"""Training data on disk: a token file read as windows of `seq_len + 1` tokens.

`TokenWindows` is the resumable training stream (a seeded random order of windows per
epoch; its position is saved in checkpoints); `val_batches` reads the validation tokens
in order.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chatforge.errors import UserError
from chatforge.train.loop import Batch, Dist


class TokenWindows:
    """Training rows cut from a token file: windows of seq_len + 1 tokens, in a seeded random
    order per epoch. Each call takes the next n windows of every process (this process's
    share), so the data order is the same for any split into micro-batches or processes."""

    def __init__(self, path: Path, dtype: str, seq_len: int, seed: int, dist: Dist) -> None:
        self.tokens = np.memmap(path, dtype=np.dtype(dtype), mode="r")
        self.seq_len, self.seed, self.dist = seq_len, seed, dist
        self.n_windows = (len(self.tokens) - 1) // seq_len
        if self.n_windows < 1:
            raise UserError(f"{path}: only {len(self.tokens)} tokens; need at least {seq_len + 1} for one training row (lower --model.block-size or add data)")
        self.epoch, self.cursor = 0, 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.n_windows)

    def _window(self) -> int:
        if self.cursor >= self.n_windows:
            self.epoch, self.cursor = self.epoch + 1, 0
            self._order = self._permutation(self.epoch)
        w = int(self._order[self.cursor])
        self.cursor += 1
        return w

    def next_batch(self, n: int) -> Batch:
        windows = [self._window() for _ in range(n * self.dist.world)]
        mine = windows[self.dist.rank * n : (self.dist.rank + 1) * n]
        rows = np.stack([self.tokens[w * self.seq_len : w * self.seq_len + self.seq_len + 1] for w in mine]).astype(np.int64)
        data = torch.from_numpy(rows)
        return {"input_ids": data[:, :-1].to(self.dist.device), "targets": data[:, 1:].to(self.dist.device)}

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "cursor": self.cursor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.cursor = int(state["epoch"]), int(state["cursor"])
        self._order = self._permutation(self.epoch)


def val_batches(path: Path, dtype: str, seq_len: int, n: int, dist: Dist) -> Iterator[Batch]:
    """Consecutive windows of the validation tokens, this process's share of each batch."""
    tokens = np.memmap(path, dtype=np.dtype(dtype), mode="r")
    windows = (len(tokens) - 1) // seq_len
    starts = list(range(dist.rank, windows, dist.world))
    for i in range(0, len(starts), n):
        rows = np.stack([tokens[w * seq_len : w * seq_len + seq_len + 1] for w in starts[i : i + n]]).astype(np.int64)
        data = torch.from_numpy(rows)
        yield {"input_ids": data[:, :-1].to(dist.device), "targets": data[:, 1:].to(dist.device)}


