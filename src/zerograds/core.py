"""The ZeroGrads algorithm: one implementation behind ``minimize``, ask/tell and ``BlackBox``.

ZeroGrads (M. Fischer, T. Ritschel, "ZeroGrads: Learning Local Surrogates for
Non-Differentiable Graphics", ACM TOG 43(4), SIGGRAPH 2024) optimizes a black box f by
following the gradient of a small neural surrogate h_φ fitted to f around the current θ::

    for each iteration:
        ε_j ~ N(0, σ² I), j = 1 … B                      # sample
        x_i ∈ {θ + ε_j, θ - ε_j}                          # antithetic pairs, 2B points
        y_i = f(x_i - t_i), t_i ~ N(0, (s σ)² I)          # active smoothing
        φ ← φ - Adam(∇_φ Σ (h_φ(x_i) - y_i)²), k_φ times  # fit surrogate
        θ ← optimizer(θ, ∇_θ h_φ(θ)), k_θ times           # step parameters

The surrogate keeps its weights between iterations, so it averages what it has seen.
"""

from __future__ import annotations

import math
import warnings
from collections import deque
from typing import Any

import numpy as np
import torch
from torch import nn

from ._checkpoint import collect_state, restore_state
from ._fast import FastMLP, adam_step
from ._optimizers import OptimizerFactory, make_optimizer
from ._validation import (
    check_bounds,
    check_choice,
    check_inside_bounds,
    check_int,
    check_nonnegative_float,
    check_positive_float,
    check_x0,
    short_repr,
    to_float_array,
    to_values,
)
from .exceptions import NonFiniteObjectiveError, NumericsWarning
from .normalization import (
    INPUT_NORMALIZATIONS,
    VALUE_NORMALIZATIONS,
    InputMap,
    ValueScale,
    normalize_values,
)
from .surrogate import build_surrogate

STEP_ORDERS = ("fit_first", "step_first")


class ZeroGrads:
    """Ask/tell optimizer that follows the gradient of a learned local surrogate.

    Args:
        x0: initial parameters θ, `(d,)`; a list, numpy array or tensor.
        sigma: standard deviation σ of the sampling perturbations, in the units of θ.
            Default 1.0.
        lr: learning rate of the θ optimizer. Default ``0.5 * sigma``.
        batch_size: number B of perturbations per iteration; each iteration evaluates 2B points.
            Without antithetic pairs it draws 2B independent perturbations. Default 4 (the
            paper's code uses 2; ``docs/defaults.md`` compares them).
        seed: seed of every random draw (perturbations, smoothing offsets, surrogate
            initialization). ``None`` draws one from the operating system.
        bounds: optional box ``(lower, upper)``; θ is projected onto it after each step and
            query points are clipped to it.
        optimizer: torch optimizer class (or any callable ``(params, **kwargs)``) that moves θ.
            Default ``torch.optim.Adam``. θ gets no weight decay unless ``optimizer_kwargs``
            sets it.
        optimizer_kwargs: extra keyword arguments for ``optimizer`` besides ``lr``.
        theta_steps: optimizer steps k_θ on θ per iteration. Default 1.
        surrogate: ``"mlp"`` (2 x 256, the default), ``"reference"`` (3 x 64 with an output
            activation, the paper's network), ``"highdim"`` (8 x 128 with positional encoding),
            ``"scalable"`` (a first layer of 16 units, then 3 x 64; memory linear in d), or a
            ``torch.nn.Module`` mapping `(n, d)` to `(n,)`.
        surrogate_kwargs: options of the named preset, see ``zerograds.surrogate.MLP``.
        surrogate_lr: learning rate of the surrogate's Adam. Default 3e-3 (the paper's code
            uses 1e-3).
        surrogate_steps: Adam updates k_φ of the surrogate per iteration. Default 3.
        replay: number of recent batches, the new one included, that each fit uses. Older
            samples stay valid evaluations of f, so fitting on them lowers the noise of the
            surrogate's gradient once θ moves slowly. 1 fits on the new batch only, as the paper
            does. The buffer holds at most ``max(2B, min(d, 2**22 // d))`` points: about d
            points determine a linear model, and more old points only add bias (at d = 10 any
            replay made the end result worse, see ``docs/defaults.md``). Default 32.
        replay_radius: a stored batch takes part in a fit only while θ is within
            ``replay_radius * sigma * sqrt(d)`` (the typical length of a perturbation) of the θ
            it was drawn around, so that samples from far away do not drag the surrogate.
            ``math.inf`` keeps all of them. Default 0.5.
        antithetic: sample pairs θ ± ε. Default True.
        smoothing: active smoothing; query points are offset by t ~ N(0, (smoothing σ)² I).
            0 switches it off. Default 0.1.
        step_order: ``"fit_first"`` fits the surrogate on the new batch and then steps θ;
            ``"step_first"`` steps θ with the surrogate of the previous iteration and then fits
            it, as the paper's reference code does. Default ``"fit_first"``.
        input_normalization: ``"none"`` (raw θ), ``"bounds"`` (the box onto [-1, 1]),
            ``"local"`` (a frame centered on θ, scaled by σ) or ``"start"`` (centered on x0),
            see ``zerograds.normalization``. Default: ``"bounds"`` when bounds are given,
            else ``"none"``.
        value_normalization: ``"running"`` (centered fit with a running scale), ``"batch"``
            (standardize each batch) or ``"none"``, see ``zerograds.normalization``.
            Default ``"running"``.
        max_nonfinite_iterations: raise ``NonFiniteObjectiveError`` after this many iterations
            in a row in which no value was finite. Default 10.
        device: device of θ, the samples and the surrogate. Default: x0's device for a tensor,
            else CPU.
        dtype: floating point type of θ, the samples and the surrogate. Default float32.

    Non-finite objective values (NaN, ±inf) never reach the surrogate: ``tell`` drops them with
    a ``NumericsWarning`` and counts them in ``n_nonfinite``. An iteration without any finite
    value neither fits nor steps.

    Example:
        >>> import zerograds as zg
        >>> opt = zg.ZeroGrads([3.0, -2.0], sigma=0.5, seed=0)
        >>> for _ in range(200):
        ...     X = opt.ask()
        ...     opt.tell(X, ((X - 1.0) ** 2).sum(dim=1))
        >>> bool(((opt.x - 1.0) ** 2).sum() < 0.1)
        True
    """

    def __init__(
        self,
        x0: Any,
        *,
        sigma: float = 1.0,
        lr: float | None = None,
        batch_size: int = 4,
        seed: int | None = None,
        bounds: Any = None,
        optimizer: OptimizerFactory | None = None,
        optimizer_kwargs: dict[str, Any] | None = None,
        theta_steps: int = 1,
        surrogate: str | nn.Module = "mlp",
        surrogate_kwargs: dict[str, Any] | None = None,
        surrogate_lr: float = 3e-3,
        surrogate_steps: int = 3,
        replay: int = 32,
        replay_radius: float = 0.5,
        surrogate_optimizer: OptimizerFactory | None = None,
        surrogate_optimizer_kwargs: dict[str, Any] | None = None,
        antithetic: bool = True,
        smoothing: float = 0.1,
        step_order: str = "fit_first",
        input_normalization: str | None = None,
        value_normalization: str = "running",
        max_nonfinite_iterations: int = 10,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        x0_array = check_x0(x0)
        self._dim = dim = x0_array.size
        self._sigma = check_positive_float("sigma", sigma)
        self._lr = check_positive_float("lr", 0.5 * self._sigma if lr is None else lr)
        self._batch_size = check_int("batch_size", batch_size, 1)
        self._theta_steps = check_int("theta_steps", theta_steps, 1)
        self._surrogate_lr = check_positive_float("surrogate_lr", surrogate_lr)
        self._surrogate_steps = check_int("surrogate_steps", surrogate_steps, 0)
        self._smoothing = check_nonnegative_float("smoothing", smoothing)
        self._replay = check_int("replay", replay, 1)
        self._replay_radius = check_positive_float("replay_radius", replay_radius, allow_inf=True)
        self._step_order = check_choice("step_order", step_order, STEP_ORDERS)
        self._max_nonfinite_iterations = check_int(
            "max_nonfinite_iterations", max_nonfinite_iterations, 1
        )
        if not isinstance(antithetic, bool):
            raise TypeError(f"`antithetic` must be a bool, got {short_repr(antithetic)}")
        self._antithetic = antithetic
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"`dtype` must be a floating torch.dtype, got {short_repr(dtype)}")
        if device is None:
            device = x0.device if isinstance(x0, torch.Tensor) else "cpu"
        self._device = torch.device(device)
        self._dtype = dtype
        largest = torch.finfo(dtype).max
        for name, number in (("sigma", self._sigma), ("lr", self._lr)):
            if number > largest:
                raise ValueError(
                    f"`{name}` must be at most {largest:.4g}, the largest {dtype} value, "
                    f"got {number!r}"
                )
        if input_normalization is None:
            input_normalization = "none" if bounds is None else "bounds"
        check_choice("input_normalization", input_normalization, INPUT_NORMALIZATIONS)
        self._value_normalization = check_choice(
            "value_normalization", value_normalization, VALUE_NORMALIZATIONS
        )

        bounds_np = check_bounds(bounds, dim)
        check_inside_bounds(x0_array, bounds_np)
        self._bounds = (
            None
            if bounds_np is None
            else tuple(torch.as_tensor(b, device=self._device, dtype=dtype) for b in bounds_np)
        )

        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0] >> 1)
        self._seed = check_int("seed", seed, 0)
        self._generator = torch.Generator(device=self._device)
        self._generator.manual_seed(self._seed)

        # θ is a leaf tensor owned by the θ optimizer; the surrogate's gradient is written
        # into θ.grad before each step.
        self._theta = torch.tensor(x0_array, device=self._device, dtype=dtype, requires_grad=True)
        self._input_map = InputMap(
            input_normalization, self._sigma, dim, self._bounds, self._device, dtype
        )
        self._input_map.recenter(self._theta)
        if input_normalization == "start":
            self._input_map.center = self._theta.detach().clone()

        # The surrogate is initialized from a generator derived from the seed, so the global
        # torch RNG is neither read nor advanced.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._seed + 1)
            self._surrogate = build_surrogate(surrogate, dim, **dict(surrogate_kwargs or {}))
        self._surrogate.to(self._device, dtype)
        self._surrogate_optimizer = make_optimizer(
            "surrogate_optimizer",
            surrogate_optimizer,
            surrogate_optimizer_kwargs,
            list(self._surrogate.parameters()),
            self._surrogate_lr,
        )
        self._value_scale = 1.0
        self._running_scale = ValueScale()
        self._exact_recenter = True

        self._optimizer = make_optimizer(
            "optimizer", optimizer, optimizer_kwargs, [self._theta], self._lr
        )

        self._nfev = 0
        self._iteration = 0
        self._n_nonfinite = 0
        self._nonfinite_streak = 0
        self._best_x = self._theta.detach().clone()
        self._best_fun = math.inf
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None  # (fit points, queries)
        # Recent batches as (fit points, values, θ they were drawn around), oldest first.
        self._replay_buffer: deque[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = deque()
        self._replay_rows = max(2 * self._batch_size, min(dim, 2**22 // dim))
        self._external_theta = False
        self._last_gradient: torch.Tensor | None = None
        # Autograd-free fit and θ step for the built-in MLP with Adam, see zerograds._fast;
        # False switches it off.
        self._fast_path = True
        self._fast: FastMLP | None = None

    # ------------------------------------------------------------------ read-only state
    @property
    def dim(self) -> int:
        """Number of parameters d."""
        return self._dim

    @property
    def x(self) -> torch.Tensor:
        """Current parameters θ, `(d,)`, a detached copy."""
        return self._theta.detach().clone()

    @property
    def best_x(self) -> torch.Tensor:
        """Point with the lowest finite value passed to ``tell`` so far, `(d,)`; θ at start."""
        return self._best_x.clone()

    @property
    def best_fun(self) -> float:
        """Lowest finite value passed to ``tell`` so far; ``inf`` before the first."""
        return self._best_fun

    @property
    def nfev(self) -> int:
        """Number of objective values passed to ``tell``, non-finite ones included."""
        return self._nfev

    @property
    def iteration(self) -> int:
        """Number of completed ``tell`` calls."""
        return self._iteration

    @property
    def n_nonfinite(self) -> int:
        """Number of non-finite values dropped so far."""
        return self._n_nonfinite

    @property
    def sigma(self) -> float:
        """Sampling standard deviation σ."""
        return self._sigma

    @property
    def batch_size(self) -> int:
        """Number of points returned by each ``ask``: 2B."""
        return 2 * self._batch_size

    @property
    def seed(self) -> int:
        """Seed of every random draw of this optimizer."""
        return self._seed

    @property
    def surrogate(self) -> nn.Module:
        """The surrogate network h_φ (its input is the normalized θ)."""
        return self._surrogate

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        """The torch optimizer that moves θ."""
        return self._optimizer

    # ------------------------------------------------------------------ ask / tell
    def ask(self) -> torch.Tensor:
        """Return the `(2B, d)` points at which to evaluate the objective next.

        The points already include the active smoothing offsets and are clipped to the bounds.
        Until ``tell`` is called, ``ask`` returns the same points again.
        """
        if self._pending is None:
            self._pending = self._sample(self._theta.detach())
        return self._pending[1].clone()

    def tell(self, points: Any, values: Any) -> None:
        """Fit the surrogate on the objective values at ``points`` and step θ.

        Args:
            points: the `(2B, d)` array returned by the last ``ask``.
            values: `(2B,)` objective values at ``points``.

        Raises:
            RuntimeError: no ``ask`` is pending.
            ValueError: ``points`` differ from the asked points, or ``values`` has the wrong
                length.
            NonFiniteObjectiveError: ``max_nonfinite_iterations`` iterations in a row without a
                finite value.
        """
        if self._pending is None:
            raise RuntimeError("tell() was called without a pending ask(); call ask() first")
        fit_points, queries = self._pending
        self._check_told_points(points, queries)
        y = to_values(values, queries.shape[0], "values")
        self._tell_values(fit_points, queries, y)

    # ------------------------------------------------------------------ algorithm steps
    def _sample(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw one batch around ``theta``: fit points x_i and query points x_i - t_i."""
        shape = (self._batch_size, self._dim)
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

    def _tell_values(
        self, fit_points: torch.Tensor, queries: torch.Tensor, values: torch.Tensor
    ) -> None:
        """Record the batch's values, fit the surrogate and step θ in the chosen order."""
        # `to_values` returns CPU tensors; numpy reads them without a torch call per check.
        finite = np.isfinite(values.detach().cpu().numpy())
        n_bad = values.numel() - int(np.count_nonzero(finite))
        self._nfev += values.numel()
        self._pending = None
        if n_bad:
            self._n_nonfinite += n_bad
            warnings.warn(
                f"dropped {n_bad} of {values.numel()} objective values that were not finite "
                f"at iteration {self._iteration}",
                NumericsWarning,
                stacklevel=3,
            )
        if n_bad == values.numel():
            self._nonfinite_streak += 1
            self._iteration += 1
            if self._nonfinite_streak >= self._max_nonfinite_iterations:
                raise NonFiniteObjectiveError(
                    f"the objective returned no finite value in {self._nonfinite_streak} "
                    "iterations in a row; check it near "
                    f"θ={short_repr(self._theta.detach().cpu().numpy())}"
                )
            return
        self._nonfinite_streak = 0
        if n_bad:
            kept = torch.from_numpy(finite)
            fit_points, queries, values = fit_points[kept], queries[kept], values[kept]

        value_array = values.detach().cpu().numpy()
        best = int(value_array.argmin())
        if value_array[best] < self._best_fun:
            self._best_fun = float(value_array[best])
            self._best_x = queries[best].detach().clone()

        # Only the "local" frame reads the center, after θ may have moved in place.
        center = self._theta.detach()
        if self._input_map.kind == "local":
            center = center.clone()
        targets = values.to(self._device, self._dtype)
        self._remember(fit_points, targets)
        if self._step_order == "step_first":
            self._step()
            self._fit(*self._replayed(), center)
        else:
            self._fit(*self._replayed(), center)
            self._step()
        self._iteration += 1

    def _remember(self, fit_points: torch.Tensor, values: torch.Tensor) -> None:
        """Add a batch drawn around the current θ to the replay buffer."""
        if self._replay == 1:
            self._replay_buffer.clear()
        self._replay_buffer.append((fit_points, values, self._theta.detach().clone()))
        rows = sum(batch[0].shape[0] for batch in self._replay_buffer)
        while len(self._replay_buffer) > self._replay or (
            len(self._replay_buffer) > 1 and rows > self._replay_rows
        ):
            rows -= self._replay_buffer.popleft()[0].shape[0]

    def _replayed(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the points and values of the stored batches drawn near the current θ."""
        if len(self._replay_buffer) == 1:
            return self._replay_buffer[0][0], self._replay_buffer[0][1]
        theta = self._theta.detach()
        radius = self._replay_radius * self._sigma * math.sqrt(self._dim)
        anchors = torch.stack([batch[2] for batch in self._replay_buffer])
        near = (torch.linalg.vector_norm(anchors - theta, dim=1) <= radius).tolist()
        near[-1] = True  # the newest batch always takes part
        used = [batch for batch, keep in zip(self._replay_buffer, near, strict=True) if keep]
        if len(used) == 1:
            return used[0][0], used[0][1]
        return torch.cat([batch[0] for batch in used]), torch.cat([batch[1] for batch in used])

    def _fit(self, fit_points: torch.Tensor, values: torch.Tensor, center: torch.Tensor) -> None:
        """Fit h_φ to ``values`` at ``fit_points`` with k_φ Adam updates of the MSE."""
        centered = self._value_normalization == "running"
        if centered:
            previous = self._running_scale.scale
            scale = self._running_scale.update(values)
            targets = (values - values.mean()) / scale
            # Keep h_φ's function in the user's units when the running scale moves.
            if previous > 0.0 and hasattr(self._surrogate, "scale_output"):
                self._surrogate.scale_output(previous / scale)
        else:
            targets, scale = normalize_values(values, self._value_normalization)
        self._recenter(center)
        self._value_scale = scale
        inputs = self._input_map(fit_points)
        fast = self._fast_mlp()
        if fast is not None:
            fast.fit(inputs, targets, centered, self._surrogate_steps)
            return
        for _ in range(self._surrogate_steps):
            self._surrogate_optimizer.zero_grad(set_to_none=True)
            prediction = self._surrogate(inputs).reshape(-1)
            if centered:
                prediction = prediction - prediction.mean()
            loss = torch.mean((prediction - targets) ** 2)
            loss.backward()
            self._surrogate_optimizer.step()

    def _recenter(self, center: torch.Tensor) -> None:
        """Move the input frame's origin to ``center``.

        With ``"local"`` normalization the surrogate absorbs the shift, so that an MLP
        keeps modelling the same function of x while its inputs stay O(1) around θ.
        """
        if self._input_map.kind != "local":
            return
        delta = (center - self._input_map.center) / self._input_map.scale
        if self._exact_recenter and hasattr(self._surrogate, "shift_input"):
            self._surrogate.shift_input(delta)
        self._input_map.recenter(center)

    def _surrogate_gradient(self, theta: torch.Tensor) -> torch.Tensor:
        """Return ∇_θ h_φ(θ) in the user's units, `(d,)`."""
        fast = self._fast_mlp()
        if fast is not None:
            point = theta.detach().unsqueeze(0)
            if self._input_map.kind == "none":
                # The map is the identity bit for bit (x - 0 == x, x / 1 == x), so skip it.
                gradient = fast.input_gradient(point)
            else:
                inputs = self._input_map(point)
                gradient = fast.input_gradient(inputs) / self._input_map.scale
            # A new tensor, so scaling it in place is safe.
            return gradient.squeeze(0).mul_(self._value_scale)
        point = theta.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            output = self._surrogate(self._input_map(point.unsqueeze(0))).sum()
            (gradient,) = torch.autograd.grad(output, point)
        return gradient * self._value_scale

    def _step(self) -> None:
        """Take k_θ optimizer steps on θ along the surrogate's gradient."""
        if self._external_theta:
            self._last_gradient = self._surrogate_gradient(self._theta)
            return
        for _ in range(self._theta_steps):
            gradient = self._surrogate_gradient(self._theta)
            if gradient.device.type == "cpu" and gradient.dtype in (torch.float32, torch.float64):
                finite = bool(np.isfinite(gradient.detach().numpy()).all())
            else:
                finite = bool(torch.isfinite(gradient).all())
            if not finite:
                warnings.warn(
                    f"skipped the θ step at iteration {self._iteration}: the surrogate's "
                    "gradient is not finite; lower `surrogate_lr` or `lr`",
                    NumericsWarning,
                    stacklevel=4,
                )
                return
            if self._fast_path:
                self._theta.grad = gradient
                stepped = adam_step(self._optimizer, self._theta, gradient)
            else:
                stepped = False
            if not stepped:
                self._optimizer.zero_grad(set_to_none=True)
                self._theta.grad = gradient
                self._optimizer.step()
            if self._bounds is not None:
                with torch.no_grad():
                    self._theta.clamp_(*self._bounds)

    def _fast_mlp(self) -> FastMLP | None:
        """Return the autograd-free trainer of the surrogate, or None where it does not apply."""
        fast = self._fast
        # Nothing outside this class runs between the calls within one tell, so one check of
        # the layout per batch (nfev and iteration identify it) is enough.
        batch = (self._nfev, self._iteration)
        if fast is not None and (fast.checked_batch == batch or fast.adam.valid()):
            fast.checked_batch = batch
            return fast
        self._fast = None
        if self._fast_path and FastMLP.supports(self._surrogate, self._surrogate_optimizer):
            self._fast = FastMLP(self._surrogate, self._surrogate_optimizer)
        return self._fast

    def _randn(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.randn(shape, generator=self._generator, device=self._device, dtype=self._dtype)

    def _check_told_points(self, points: Any, queries: torch.Tensor) -> None:
        if isinstance(points, torch.Tensor):
            told = points.detach().to(queries.device, queries.dtype)
        else:
            told = torch.as_tensor(to_float_array("points", points), device=queries.device).to(
                queries.dtype
            )
        if told.shape != queries.shape:
            raise ValueError(
                f"`points` must be the {tuple(queries.shape)} array returned by ask(), "
                f"got shape {tuple(told.shape)}"
            )
        # torch.equal is the cheaper check and passes for the tensor that ask() returned.
        if not torch.equal(told, queries) and not torch.allclose(
            told, queries, rtol=1e-5, atol=1e-6 * self._sigma
        ):
            difference = float((told - queries).abs().max())
            raise ValueError(
                "`points` must be the points returned by the last ask(), got points that "
                f"differ by up to {difference:.3g}; tell() needs the values at exactly those "
                "points"
            )

    def _set_theta(self, theta: torch.Tensor) -> None:
        """Replace θ, for callers that move θ themselves (``BlackBox``)."""
        with torch.no_grad():
            self._theta.copy_(theta.detach().to(self._device, self._dtype))

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Return everything needed to continue bit-identically: θ, the surrogate, both
        optimizers' states, the RNG state, the pending batch and the counters.

        The returned tensors are copies, so later steps do not change a saved state.
        """
        return collect_state(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state returned by ``state_dict`` of an optimizer built the same way.

        Raises:
            TypeError: ``state`` is not a dict.
            ValueError: the state is malformed or belongs to a problem of another dimension.
        """
        restore_state(self, state)
        self._fast = None
