"""``kernels="numba"``: the fast path's fit, gradient and Adam steps as compiled calls.

``NumbaMLP`` wraps a ``zerograds._fast.FastMLP`` and runs its work through
``zerograds._numba_kernels`` on numpy views of the same buffers: the surrogate's weights,
their gradients and Adam moments stay where ``FlatAdam`` keeps them, so checkpoints and the
torch path see the same state. numba is imported only when this module is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

try:
    from numba.typed import List as TypedList

    from . import _numba_kernels as kernels
except ImportError as error:  # pragma: no cover - the message is tested where numba is absent
    raise ImportError(
        "`kernels`='numba' needs the numba package; install it with "
        "`pip install 'zerograds[numba]'` or `pip install numba`"
    ) from error

if TYPE_CHECKING:
    from ._fast import FastMLP

NUMBA_DTYPES = (torch.float32, torch.float64)
# Fits on more rows than this run torch's kernels, because the compiled loops are not blocked
# like a matrix product library's. At d = 1000 they were slower than torch from 32 rows on
# with width 256 and from 64 rows on with width 64 (docs/performance.md).
MAX_ROWS = 16
# Above four rows the first layer's gradient is summed in a buffer of one input row. Where
# that row does not fit in a 32 KiB L1 cache beside its inputs, as for a positional encoding
# of d = 1000 (13,000 inputs), eight pairs ran 12-31 % slower than torch; so only four rows.
MAX_ROW_BYTES = 16384


def fill_constants(group: dict[str, Any], first_step: float, count: int, out: np.ndarray) -> None:
    """Write the ``hyper`` rows of ``count`` Adam updates after ``first_step`` into ``out``."""
    beta1, beta2 = group["betas"]
    kernels.adam_constants(
        float(group["lr"]), beta1, beta2, float(group["eps"]), first_step, count, out
    )


class NumbaMLP:
    """Compiled fit and input gradient of the network behind a ``FastMLP``.

    Args:
        fast: the torch fast path of the same network; its layers and ``FlatAdam`` buffers
            must be float32 or float64 tensors on the CPU.
    """

    def __init__(self, fast: FastMLP) -> None:
        self.fast = fast
        views = fast.adam.views  # per parameter: (p, value, grad, exp_avg, exp_avg_sq, step)
        dtype = fast.adam.param.dtype
        if fast.adam.param.device.type != "cpu" or dtype not in NUMBA_DTYPES:
            raise ValueError(
                "`kernels`='numba' needs float32 or float64 surrogate weights on the CPU, got "
                f"{dtype} on {fast.adam.param.device}"
            )
        self.dtype = fast.adam.param.numpy().dtype

        # Weights and biases, then their gradients, first and second moments (_numba_kernels).
        self.matrices = TypedList(
            [
                views[i][position].numpy()
                for position in (1, 2, 3, 4)
                for i in range(0, len(views), 2)
            ]
        )
        self.vectors = TypedList(
            [
                views[i][position].numpy()
                for position in (1, 2, 3, 4)
                for i in range(1, len(views), 2)
            ]
        )
        slopes = [layer[3] for layer in fast.plain_layers]
        self.output_activation = slopes[-1] is not None
        # A leaky ReLU of slope 1 is the identity, bit for bit, in both directions.
        self.slopes = np.array([1.0 if s is None else s for s in slopes], dtype=self.dtype)
        self.hyper = np.empty((0, 6), self.dtype)
        # Plain references: indexing a typed list from Python costs microseconds.
        self.output_weight = views[-2][1].numpy()
        self.output_bias = views[-1][1].numpy()
        self.theta_hyper = np.empty((1, 6), self.dtype)
        # (θ's exp_avg and exp_avg_sq, θ's address, the gradient buffer, numpy views of those four)
        self.theta_views: tuple[Any, ...] | None = None
        width = self.matrices[0].shape[1]
        self.max_rows = MAX_ROWS if width * self.dtype.itemsize <= MAX_ROW_BYTES else 4

    def scale_output(self, ratio: float) -> bool:
        """``MLP.scale_output`` on the numpy views: multiply the output by ``ratio`` exactly."""
        if self.output_activation and ratio <= 0.0:
            return False
        self.output_weight *= ratio
        self.output_bias *= ratio
        return True

    def theta_step(
        self,
        theta: torch.Tensor,
        state: dict[str, Any],
        group: dict[str, Any],
        scale: float,
    ) -> tuple[bool, torch.Tensor]:
        """Step θ by Adam along ``scale`` times the surrogate's gradient at θ.

        Returns whether the gradient was finite (only then θ moved) and the gradient.
        """
        gradient, arrays = self._theta_arrays(theta, state)
        hyper = self.theta_hyper
        fill_constants(group, float(state["step"]), 1, hyper)
        finite = kernels.theta_step(
            arrays[0],
            arrays[1],
            arrays[2],
            arrays[3],
            self.matrices,
            self.vectors,
            self.slopes,
            self.output_activation,
            scale,
            hyper[0],
        )
        if finite:
            state["step"] += 1
        return finite, gradient

    def _theta_arrays(
        self, theta: torch.Tensor, state: dict[str, Any]
    ) -> tuple[torch.Tensor, tuple[np.ndarray, ...]]:
        """Return θ's gradient buffer and numpy views of θ, the buffer and θ's Adam moments."""
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        cached = self.theta_views
        if (
            cached is None
            or cached[0] is not exp_avg
            or cached[1] is not exp_avg_sq
            or cached[2] != theta.data_ptr()
        ):
            # θ.grad gets one buffer that each step overwrites, as Optimizer.zero_grad(False) does.
            gradient = torch.empty(theta.shape, dtype=theta.dtype)
            arrays = (theta.detach().numpy(), gradient.numpy(), exp_avg.numpy(), exp_avg_sq.numpy())
            cached = self.theta_views = (exp_avg, exp_avg_sq, theta.data_ptr(), gradient, arrays)
        return cached[3], cached[4]

    def _fit_constants(self, steps: int) -> tuple[np.ndarray, np.ndarray]:
        """Return the ``hyper`` rows of the next ``steps`` surrogate updates and the step counts."""
        adam = self.fast.adam
        steps_array = adam.steps_array
        assert steps_array is not None  # the buffers are on the CPU
        hyper = self.hyper if self.hyper.shape[0] == steps else np.empty((steps, 6), self.dtype)
        self.hyper = hyper
        fill_constants(adam.optimizer.param_groups[0], float(steps_array[0]), steps, hyper)
        return hyper, steps_array

    def fit_and_step(
        self,
        inputs: torch.Tensor,
        values: torch.Tensor,
        running: Any,
        steps: int,
        theta: torch.Tensor,
        state: dict[str, Any],
        group: dict[str, Any],
    ) -> tuple[bool, torch.Tensor, float]:
        """Fit on centered ``values`` with the running scale ``running`` and step θ once.

        Returns whether θ's gradient was finite (θ moved only then), the gradient, and the
        value scale of the fit.
        """
        hyper, steps_array = self._fit_constants(steps)
        gradient, arrays = self._theta_arrays(theta, state)
        fill_constants(group, float(state["step"]), 1, self.theta_hyper)
        running.scale, scale, finite = kernels.fit_and_step(
            np.ascontiguousarray(inputs.detach().numpy()),
            np.ascontiguousarray(values.detach().numpy()),
            running.scale,
            running.decay,
            self.matrices,
            self.vectors,
            self.slopes,
            self.output_activation,
            hyper,
            arrays[0],
            arrays[1],
            arrays[2],
            arrays[3],
            self.theta_hyper[0],
        )
        steps_array += steps
        if finite:
            state["step"] += 1
        return finite, gradient, scale

    def fit(self, inputs: torch.Tensor, targets: torch.Tensor, centered: bool, steps: int) -> None:
        """Run ``steps`` Adam updates of the (centered) MSE at ``inputs``, `(n, d)`."""
        if steps == 0:
            return
        hyper, steps_array = self._fit_constants(steps)
        kernels.fit(
            np.ascontiguousarray(inputs.detach().numpy()),
            np.ascontiguousarray(targets.detach().numpy()),
            centered,
            self.matrices,
            self.vectors,
            self.slopes,
            hyper,
        )
        steps_array += steps

    def input_gradient(self, inputs: torch.Tensor) -> torch.Tensor:
        """Return ∇_u Σ h(u) at the (encoded) ``inputs``, `(n, d)`, as a new tensor."""
        gradient = kernels.input_gradient(
            np.ascontiguousarray(inputs.detach().numpy()),
            self.matrices,
            self.vectors,
            self.slopes,
            self.output_activation,
        )
        return torch.from_numpy(gradient)


def numba_adam_step(
    param: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]
) -> bool:
    """Apply one ``torch.optim.Adam`` update to a CPU float parameter, or return False."""
    if param.device.type != "cpu" or param.dtype not in NUMBA_DTYPES or grad.dtype != param.dtype:
        return False
    step = state["step"]
    values = param.detach().numpy()
    hyper = np.empty((1, 6), values.dtype)
    fill_constants(group, float(step), 1, hyper)
    kernels.adam_update(
        values,
        np.ascontiguousarray(grad.detach().numpy()),
        state["exp_avg"].numpy(),
        state["exp_avg_sq"].numpy(),
        hyper[0],
    )
    step += 1
    return True
