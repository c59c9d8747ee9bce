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
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ._checkpoint import collect_state, restore_state
from ._construction import (
    MAX_BATCH_ELEMENTS,
    MAX_NORMAL_DRAW,
    MAX_SEED,
    check_device,
    check_kernels,
    check_step_needs_no_closure,
    check_surrogate_module,
    first_infinite_bound,
    generator_seed,
)
from ._fast_adam import adam_step
from ._local_surrogate import LocalSurrogate
from ._optimizers import OptimizerFactory, make_optimizer
from ._replay import ReplayBuffer
from ._sampling import Sampler
from ._validation import (
    check_bounds,
    check_choice,
    check_finite_in_dtype,
    check_inside_bounds,
    check_int,
    check_nonnegative_float,
    check_positive_float,
    check_tell_points,
    check_x0,
    finite_mask,
    short_repr,
    to_values,
)
from .exceptions import NonFiniteObjectiveError, NumericsWarning
from .normalization import INPUT_NORMALIZATIONS, VALUE_NORMALIZATIONS, InputMap
from .surrogate import build_surrogate

STEP_ORDERS = ("fit_first", "step_first")


class ZeroGrads:
    """Ask/tell optimizer that follows the gradient of a learned local surrogate.

    Args:
        x0: initial parameters θ, `(d,)`; a list, numpy array or tensor.
        sigma: standard deviation σ of the sampling perturbations, in the units of θ.
            Default 1.0.
        lr: learning rate of the θ optimizer. Default ``0.1 * sigma``; from a start many σ
            from the optimum, ``0.5 * sigma`` travels faster.
        batch_size: number B of perturbations per iteration; each iteration evaluates 2B points.
            Without antithetic pairs it draws 2B independent perturbations. Default 4 (the
            paper's code uses 2; ``docs/defaults.md`` compares them). At most
            ``2**31 // (2 * d)``, so that one batch holds at most 2**31 coordinates.
        seed: seed of every random draw (perturbations, smoothing offsets, surrogate
            initialization), an integer with ``0 <= seed < 2**63``. ``None`` draws one from the
            operating system. Seeds below 2**32 seed the torch generators directly. Larger
            seeds are first hashed to 64 bits, because torch's CPU generator keeps only the low
            32 bits of its seed; on the CPU two different seeds of 2**32 or more therefore give
            the same run with a chance of about 2**-32.
        bounds: optional box ``(lower, upper)``; θ is projected onto it after each step and
            query points are clipped to it.
        optimizer: torch optimizer class (or any callable ``(params, **kwargs)``) that moves θ.
            Default ``torch.optim.Adam``. θ gets no weight decay unless ``optimizer_kwargs``
            sets it. Optimizers whose ``step`` needs a closure (``torch.optim.LBFGS``) are not
            supported.
        optimizer_kwargs: extra keyword arguments for ``optimizer`` besides ``lr``.
        theta_steps: optimizer steps k_θ on θ per iteration. Default 1.
        surrogate: ``"mlp"`` (2 x 256, the default), ``"reference"`` (3 x 64 with an output
            activation, the paper's network), ``"highdim"`` (8 x 128 with positional encoding),
            ``"scalable"`` (a first layer of 16 units, then 3 x 64; memory linear in d), or a
            ``torch.nn.Module`` mapping `(n, d)` to `(n,)` (or `(n, 1)`). A module is checked
            once, on a `(2, d)` input of zeros, without changing its parameters or any random
            generator.
        surrogate_kwargs: options of the named preset, see ``zerograds.surrogate.MLP``.
        surrogate_lr: learning rate of the surrogate's Adam. Default 3e-3 (the paper's code
            uses 1e-3).
        surrogate_steps: Adam updates k_φ of the surrogate per iteration. Default 3.
        replay: number of recent batches, the new one included, that each fit uses. Older
            samples stay valid evaluations of f, so fitting on them lowers the noise of the
            surrogate's gradient once θ moves slowly. 1 fits on the new batch only, as the paper
            does. The buffer holds at most ``max(2B, min(d, 2**20 // d))`` points. About d
            points determine a linear model, and more old points only add bias (at d = 10 any
            replay made the end result worse, see ``docs/defaults.md``). The 2**20 values
            (4 MiB in float32) bound the fit's cost at large d. Default 32.
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
            see ``zerograds.normalization``. Default: ``"bounds"`` when bounds are given and
            all of them are finite, else ``"none"``. A bound that is infinite, or beyond the
            range of ``dtype`` (such as 1e39 for float32), has no box to map, so it makes the
            default ``"none"``, and ``"bounds"`` with such a bound raises ``ValueError``.
        value_normalization: ``"running"`` (centered fit with a running scale), ``"batch"``
            (standardize each batch) or ``"none"``, see ``zerograds.normalization``.
            Default ``"running"``.
        max_nonfinite_iterations: raise ``NonFiniteObjectiveError`` after this many iterations
            in a row in which no value was finite. Default 10.
        device: device of θ, the samples and the surrogate, which must be available. Default:
            x0's device for a tensor, else CPU.
        dtype: floating point type of θ, the samples and the surrogate. Default float32. x0
            must lie within its range, and so must the sample points: ``|x0| + 10 * sigma *
            (1 + smoothing)`` must not exceed its largest value.
        kernels: ``"torch"`` (default) or ``"numba"``. With ``"numba"`` the surrogate's fit,
            its gradient, an Adam step on θ and the sampling run as compiled calls (the
            ``numba`` package, ``pip install 'zerograds[numba]'``). At d = 1000 with the
            paper's sizes and ``replay=1`` an iteration was 2.7 times faster
            (``docs/performance.md``). Fits on more than 16 points, as with the default
            replay buffer, keep torch's kernels. It needs a built-in MLP surrogate with
            Adam, on the CPU, in float32 or float64. Results agree with ``"torch"`` up to
            rounding, not bit for bit. The same seed gives the same bits.

    Non-finite objective values never reach the surrogate: ``tell`` drops NaN, ±inf and values
    beyond the range of ``dtype`` (such as 1e39 for float32, which would become inf in the
    surrogate) with a ``NumericsWarning`` and counts them in ``n_nonfinite``. An iteration
    without any finite value neither fits nor steps.

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
        kernels: str = "torch",
    ) -> None:
        x0_array = check_x0(x0)
        self._dim = dim = x0_array.size
        self._sigma = check_positive_float("sigma", sigma)
        self._lr = check_positive_float("lr", 0.1 * self._sigma if lr is None else lr)
        self._batch_size = check_int("batch_size", batch_size, 1)
        largest_batch = MAX_BATCH_ELEMENTS // (2 * dim)
        if self._batch_size > largest_batch:
            raise ValueError(
                f"`batch_size` must be at most {largest_batch} for d={dim}, so that a batch of "
                f"2 * batch_size * d coordinates stays within 2**31, got {short_repr(batch_size)}"
            )
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
        self._device = check_device(device)
        self._dtype = dtype
        largest = torch.finfo(dtype).max
        for name, number in (("sigma", self._sigma), ("lr", self._lr)):
            if number > largest:
                raise ValueError(
                    f"`{name}` must be at most {largest:.4g}, the largest {dtype} value, "
                    f"got {number!r}"
                )
        check_finite_in_dtype("x0", x0_array, dtype)
        reach = float(np.abs(x0_array).max()) + MAX_NORMAL_DRAW * self._sigma * (
            1.0 + self._smoothing
        )
        if not reach <= largest:
            raise ValueError(
                f"`sigma`={self._sigma!r} with `smoothing`={self._smoothing!r} would put sample "
                f"points out to about |x0| + {MAX_NORMAL_DRAW:g} * sigma * (1 + smoothing) = "
                f"{reach:.4g}, beyond {largest:.4g}, the largest {dtype} value"
            )
        for name, kwargs in (
            ("optimizer_kwargs", optimizer_kwargs),
            ("surrogate_kwargs", surrogate_kwargs),
            ("surrogate_optimizer_kwargs", surrogate_optimizer_kwargs),
        ):
            if kwargs is not None and not isinstance(kwargs, Mapping):
                raise TypeError(f"`{name}` must be a dict or None, got {short_repr(kwargs)}")

        bounds_np = check_bounds(bounds, dim)
        check_inside_bounds(x0_array, bounds_np)
        # Bounds beyond the range of dtype become ±inf here, which is what they mean.
        self._bounds = (
            None
            if bounds_np is None
            else tuple(torch.as_tensor(b, device=self._device, dtype=dtype) for b in bounds_np)
        )
        infinite_bound = None if bounds_np is None else first_infinite_bound(bounds_np, dtype)
        if input_normalization is None:
            input_normalization = (
                "bounds" if bounds is not None and infinite_bound is None else "none"
            )
        check_choice("input_normalization", input_normalization, INPUT_NORMALIZATIONS)
        if input_normalization == "bounds" and infinite_bound is not None:
            raise ValueError(
                "`input_normalization`='bounds' maps the box of `bounds` onto [-1, 1] and needs "
                f"finite bounds, got {infinite_bound}; pass input_normalization='none' (the "
                "default for such bounds) or finite bounds"
            )
        self._value_normalization = check_choice(
            "value_normalization", value_normalization, VALUE_NORMALIZATIONS
        )

        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0] >> 1)
        self._seed = check_int("seed", seed, 0, MAX_SEED)
        torch_seed = generator_seed(self._seed)
        self._generator = torch.Generator(device=self._device)
        self._generator.manual_seed(torch_seed)
        self._sampler = Sampler(
            self._generator,
            self._batch_size,
            dim,
            self._sigma,
            self._antithetic,
            self._smoothing,
            self._bounds,
            self._device,
            dtype,
        )

        # θ is a leaf tensor owned by the θ optimizer; the surrogate's gradient is written
        # into θ.grad before each step.
        self._theta = torch.tensor(x0_array, device=self._device, dtype=dtype, requires_grad=True)
        input_map = InputMap(
            input_normalization, self._sigma, dim, self._bounds, self._device, dtype
        )
        input_map.recenter(self._theta)
        if input_normalization == "start":
            input_map.center = self._theta.detach().clone()

        # The surrogate is initialized from a generator derived from the seed, so the global
        # torch RNG is neither read nor advanced.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed((torch_seed + 1) % 2**64)
            network = build_surrogate(surrogate, dim, **dict(surrogate_kwargs or {}))
        network.to(self._device, dtype)
        if isinstance(surrogate, nn.Module):
            check_surrogate_module(network, dim, self._device, dtype)
        network_optimizer = make_optimizer(
            "surrogate_optimizer",
            surrogate_optimizer,
            surrogate_optimizer_kwargs,
            list(network.parameters()),
            self._surrogate_lr,
        )
        check_step_needs_no_closure("surrogate_optimizer", network_optimizer)
        self._model = LocalSurrogate(
            network, network_optimizer, input_map, self._value_normalization, self._surrogate_steps
        )
        self._kernels = check_kernels(kernels, network, network_optimizer, self._device, dtype)
        self._model.kernels = self._kernels
        self._sampler.compiled = self._kernels == "numba"

        self._optimizer = make_optimizer(
            "optimizer", optimizer, optimizer_kwargs, [self._theta], self._lr
        )
        check_step_needs_no_closure("optimizer", self._optimizer)

        self._nfev = 0
        self._iteration = 0
        self._n_nonfinite = 0
        self._nonfinite_streak = 0
        self._best_x = self._theta.detach().clone()
        self._best_fun = math.inf
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None  # (fit points, queries)
        self._replay_buffer = ReplayBuffer(
            self._replay,
            max(2 * self._batch_size, min(dim, 2**20 // dim)),
            self._replay_radius * self._sigma * math.sqrt(dim),
        )
        self._external_theta = False
        self._last_gradient: torch.Tensor | None = None

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
        return self._model.network

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
            self._pending = self._sampler.sample(self._theta.detach())
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
        check_tell_points(points, queries, self._sigma)
        y = to_values(values, queries.shape[0], "values")
        self._tell_values(fit_points, queries, y)

    # ------------------------------------------------------------------ algorithm steps
    def _tell_values(
        self, fit_points: torch.Tensor, queries: torch.Tensor, values: torch.Tensor
    ) -> None:
        """Record the batch's values, fit the surrogate and step θ in the chosen order."""
        # `to_values` returns CPU tensors; numpy reads them without a torch call per check.
        # A value beyond the range of the working dtype would become ±inf in the surrogate,
        # so it counts as not finite.
        finite = finite_mask(values.detach().cpu().numpy(), self._dtype)
        n_bad = values.numel() - int(np.count_nonzero(finite))
        self._nfev += values.numel()
        self._pending = None
        if n_bad:
            self._n_nonfinite += n_bad
            warnings.warn(
                f"dropped {n_bad} of {values.numel()} objective values that were not finite "
                f"in {self._dtype} (NaN, ±inf or beyond ±{torch.finfo(self._dtype).max:.4g}) "
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
            keep = torch.from_numpy(finite)
            values = values[keep.to(values.device)]
            keep = keep.to(fit_points.device)
            fit_points, queries = fit_points[keep], queries[keep]

        value_array = values.detach().cpu().numpy()
        best = int(value_array.argmin())
        if value_array[best] < self._best_fun:
            self._best_fun = float(value_array[best])
            self._best_x = queries[best].detach().clone()

        # Only the "local" frame reads the center, after θ may have moved in place.
        center = self._theta.detach()
        if self._model.input_map.kind == "local":
            center = center.clone()
        targets = values.to(self._device, self._dtype)
        self._replay_buffer.add(fit_points, targets, self._theta.detach().clone())
        if self._step_order == "step_first":
            self._step()
            self._fit(*self._replay_buffer.select(self._theta.detach()), center)
        else:
            selected = self._replay_buffer.select(self._theta.detach())
            if not self._numba_fit_and_step(*selected):
                self._fit(*selected, center)
                self._step()
        self._iteration += 1

    def _numba_fit_and_step(self, fit_points: torch.Tensor, values: torch.Tensor) -> bool:
        """Fit and take the one θ step in a single compiled call, or return False if it cannot."""
        if self._kernels != "numba" or self._theta_steps != 1 or self._external_theta:
            return False
        outcome = self._model.numba_fit_and_step(
            fit_points,
            values,
            self._theta,
            self._optimizer,
            (self._nfev, self._iteration),
        )
        if outcome is None:
            return False
        finite, self._theta.grad = outcome
        if not finite:
            self._warn_nonfinite_gradient()
        elif self._bounds is not None:
            with torch.no_grad():
                self._theta.clamp_(*self._bounds)
        return True

    def _fit(self, fit_points: torch.Tensor, values: torch.Tensor, center: torch.Tensor) -> None:
        """Fit h_φ to ``values`` at ``fit_points`` with k_φ Adam updates of the MSE."""
        self._model.fit(fit_points, values, center, (self._nfev, self._iteration))

    def _surrogate_gradient(self, theta: torch.Tensor) -> torch.Tensor:
        """Return ∇_θ h_φ(θ) in the user's units, `(d,)`."""
        # Nothing outside this class runs between the calls within one tell, so nfev and
        # iteration identify the batch whose fast-path layout was checked.
        return self._model.gradient(theta, (self._nfev, self._iteration))

    def _step(self) -> None:
        """Take k_θ optimizer steps on θ along the surrogate's gradient."""
        if self._external_theta:
            self._last_gradient = self._surrogate_gradient(self._theta)
            return
        for _ in range(self._theta_steps):
            if self._kernels == "numba":
                outcome = self._model.numba_theta_step(
                    self._theta, self._optimizer, (self._nfev, self._iteration)
                )
                if outcome is not None:
                    finite, self._theta.grad = outcome
                    if not finite:
                        self._warn_nonfinite_gradient()
                        return
                    if self._bounds is not None:
                        with torch.no_grad():
                            self._theta.clamp_(*self._bounds)
                    continue
            gradient = self._surrogate_gradient(self._theta)
            if gradient.device.type == "cpu" and gradient.dtype in (torch.float32, torch.float64):
                finite = bool(np.isfinite(gradient.detach().numpy()).all())
            else:
                finite = bool(torch.isfinite(gradient).all())
            if not finite:
                self._warn_nonfinite_gradient()
                return
            if self._model.fast_path:
                self._theta.grad = gradient
                stepped = adam_step(self._optimizer, self._theta, gradient, self._kernels)
            else:
                stepped = False
            if not stepped:
                self._optimizer.zero_grad(set_to_none=True)
                self._theta.grad = gradient
                self._optimizer.step()
            if self._bounds is not None:
                with torch.no_grad():
                    self._theta.clamp_(*self._bounds)

    def _warn_nonfinite_gradient(self) -> None:
        warnings.warn(
            f"skipped the θ step at iteration {self._iteration}: the surrogate's "
            "gradient is not finite; lower `surrogate_lr` or `lr`",
            NumericsWarning,
            stacklevel=5,
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
            TypeError: ``state`` is not a dict, or an entry has the wrong type.
            ValueError: the state is malformed, or comes from an optimizer with another
                dimension, batch size, surrogate or optimizer class. The optimizer is left
                unchanged.
        """
        restore_state(self, state)
        self._model.fast = None
