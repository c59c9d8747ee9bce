"""The replay buffer: recent batches of samples that each surrogate fit reuses."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator

import torch

# (fit points `(n, d)`, values `(n,)`, θ they were drawn around `(d,)`)
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class ReplayBuffer:
    """Recent batches as (fit points, values, θ they were drawn around), oldest first.

    Args:
        batches: number of batches kept, the newest included; 1 keeps the newest only.
        max_rows: number of points kept; the oldest batches are dropped beyond it, but the
            newest batch always stays.
        radius: a stored batch takes part in ``select`` only while θ is within this distance,
            in the units of θ, of the θ that it was drawn around.
    """

    def __init__(self, batches: int, max_rows: int, radius: float) -> None:
        self.batches = batches
        self.max_rows = max_rows
        self.radius = radius
        self._batches: deque[Batch] = deque()

    def __len__(self) -> int:
        return len(self._batches)

    def __iter__(self) -> Iterator[Batch]:
        return iter(self._batches)

    def __getitem__(self, index: int) -> Batch:
        return self._batches[index]

    def replace(self, batches: Iterable[Batch]) -> None:
        """Replace the stored batches, oldest first, as when restoring a checkpoint."""
        self._batches.clear()
        self._batches.extend(batches)

    def add(self, fit_points: torch.Tensor, values: torch.Tensor, anchor: torch.Tensor) -> None:
        """Add a batch drawn around ``anchor`` and drop the batches over the limits."""
        if self.batches == 1:
            self._batches.clear()
        self._batches.append((fit_points, values, anchor))
        rows = sum(batch[0].shape[0] for batch in self._batches)
        while len(self._batches) > self.batches or (
            len(self._batches) > 1 and rows > self.max_rows
        ):
            rows -= self._batches.popleft()[0].shape[0]

    def select(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the points and values of the stored batches drawn near ``theta``."""
        if len(self._batches) == 1:
            return self._batches[0][0], self._batches[0][1]
        anchors = torch.stack([batch[2] for batch in self._batches])
        near = (torch.linalg.vector_norm(anchors - theta, dim=1) <= self.radius).tolist()
        near[-1] = True  # the newest batch always takes part
        used = [batch for batch, keep in zip(self._batches, near, strict=True) if keep]
        if len(used) == 1:
            return used[0][0], used[0][1]
        return torch.cat([batch[0] for batch in used]), torch.cat([batch[1] for batch in used])
