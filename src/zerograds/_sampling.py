"""Drawing the points of one iteration around θ: perturbations and active smoothing."""

from __future__ import annotations

import torch


class Sampler:
    """Source of the 2B fit points and query points of each iteration.

    Args:
        generator: source of every draw; the optimizer's checkpoints save its state.
        batch_size: number B of perturbations; each batch has 2B points.
        dim: number of parameters d.
        sigma: standard deviation σ of the perturbations.
        antithetic: draw pairs θ ± ε, else 2B independent perturbations.
        smoothing: standard deviation of the query offsets, as a multiple of σ; 0 for none.
        bounds: optional ``(lower, upper)`` box that the query points are clipped to.
    """

    def __init__(
        self,
        generator: torch.Generator,
        batch_size: int,
        dim: int,
        sigma: float,
        antithetic: bool,
        smoothing: float,
        bounds: tuple[torch.Tensor, torch.Tensor] | None,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        self._generator = generator
        self._batch_size = batch_size
        self._dim = dim
        self._sigma = sigma
        self._antithetic = antithetic
        self._smoothing = smoothing
        self._bounds = bounds
        self._device = device
        self._dtype = dtype
        # True: form the points with one compiled call (kernels="numba", CPU only).
        self.compiled = False

    def sample(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw one batch around ``theta``: fit points x_i and query points x_i - t_i."""
        shape = (self._batch_size, self._dim)
        if self.compiled:
            return self._sample_compiled(theta)
        if self._antithetic:
            eps = self._randn(shape) * self._sigma
            fit_points = torch.cat([theta + eps, theta - eps])
        else:
            fit_points = theta + self._randn((2 * self._batch_size, self._dim)) * self._sigma

        # Active smoothing: one sample of the Gaussian blur of f at x_i. The surrogate is
        # fitted at x_i, so it learns the blurred objective.
        queries = fit_points
        if self._smoothing > 0.0:
            offsets = self._randn(fit_points.shape) * (self._smoothing * self._sigma)
            queries = fit_points - offsets
        if self._bounds is not None:
            queries = torch.clamp(queries, *self._bounds)
        return fit_points, queries

    def _sample_compiled(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``sample``'s points, formed in one compiled call from the same draws."""
        from ._numba_kernels import sample_points

        rows = 2 * self._batch_size
        normal = self._randn((self._batch_size if self._antithetic else rows, self._dim))
        offsets = self._randn((rows, self._dim)) if self._smoothing > 0.0 else normal[:0]
        fit_points = torch.empty((rows, self._dim), dtype=self._dtype)
        queries = (
            torch.empty((rows, self._dim), dtype=self._dtype)
            if self._smoothing > 0.0
            else fit_points
        )
        sample_points(
            theta.numpy(),
            normal.numpy(),
            offsets.numpy(),
            self._sigma,
            self._smoothing * self._sigma,
            self._antithetic,
            fit_points.numpy(),
            queries.numpy(),
        )
        if self._bounds is not None:
            queries = torch.clamp(queries, *self._bounds)
        return fit_points, queries

    def _randn(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.randn(shape, generator=self._generator, device=self._device, dtype=self._dtype)
