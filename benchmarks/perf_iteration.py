"""Time per iteration of zerograds against an eager reference loop of the same algorithm.

The reference loop below is the algorithm written out with ``torch.nn.Sequential`` (3 hidden
layers of 64, leaky ReLU), ``torch.optim.Adam`` on the surrogate and on θ, autograd for both
gradients, and zerograds' defaults: 2 antithetic pairs, smoothing 0.1σ, 3 surrogate updates
per iteration, raw inputs, the centered fit with a running value scale, fit before step. It
draws its random numbers in zerograds' order from a generator seeded the same way, so with the
same Adam kernels both produce the same trajectory. Two references are timed: one with
``torch.optim.Adam`` as zerograds builds it (``fused=True``), whose trajectory is compared with
zerograds', and the plain default ``torch.optim.Adam()``. A third loop runs only the kernels
that results equal to the reference's require (``KernelFloorLoop``); its column bounds the
ratio that any torch implementation with the same results can reach.

All loops run in one process on one torch thread, interleaved in rounds, so that load from other
processes hits both alike; the table shows the median over rounds. The objective is a cheap
vectorized quadratic with its optimum at 30·1, started from 100·1.

Run: ``.venv/bin/python benchmarks/perf_iteration.py [--large] [--long] [--defaults]``
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

import zerograds as zg

Objective = Callable[[torch.Tensor], torch.Tensor]


def quadratic(dim: int) -> Objective:
    optimum = torch.full((dim,), 30.0)

    def fun(x: torch.Tensor) -> torch.Tensor:
        return ((x - optimum) ** 2).sum(dim=1)

    return fun


class ReferenceLoop:
    """ZeroGrads' default iteration in plain eager PyTorch, for timing and agreement."""

    def __init__(self, x0: torch.Tensor, *, seed: int, fused: bool, sigma: float = 1.0) -> None:
        dim = x0.numel()
        self.sigma = sigma
        self.pairs = 2
        self.generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 1)
            layers: list[nn.Module] = []
            width = dim
            for _ in range(3):
                layers += [nn.Linear(width, 64), nn.LeakyReLU(0.01)]
                width = 64
            layers.append(nn.Linear(width, 1))
            self.net = nn.Sequential(*layers)
        options = {"fused": True} if fused else {}
        self.net_optimizer = torch.optim.Adam(self.net.parameters(), lr=1e-3, **options)
        self.theta = x0.clone().requires_grad_(True)
        self.optimizer = torch.optim.Adam([self.theta], lr=0.5 * sigma, **options)
        self.running_scale = 0.0

    def iterate(self, fun: Objective) -> None:
        theta = self.theta.detach()
        sigma = self.sigma

        # Sample 2B antithetic points and offset the queries for active smoothing.
        eps = torch.randn((self.pairs, theta.numel()), generator=self.generator) * sigma
        points = torch.cat([theta + eps, theta - eps])
        offsets = torch.randn(points.shape, generator=self.generator) * (0.1 * sigma)
        values = fun(points - offsets)

        # Running value scale: an exponential moving average of the batch spread.
        previous = self.running_scale
        spread = float(values.std(unbiased=False))
        if spread > 0.0:
            self.running_scale = spread if previous == 0.0 else 0.9 * previous + 0.1 * spread
        scale = self.running_scale if self.running_scale > 0.0 else 1.0
        targets = (values - values.mean()) / scale
        if previous > 0.0:
            with torch.no_grad():
                self.net[-1].weight.mul_(previous / scale)
                self.net[-1].bias.mul_(previous / scale)

        # Fit the surrogate: centered mean squared error, 3 Adam updates.
        for _ in range(3):
            self.net_optimizer.zero_grad(set_to_none=True)
            prediction = self.net(points).reshape(-1)
            loss = torch.mean((prediction - prediction.mean() - targets) ** 2)
            loss.backward()
            self.net_optimizer.step()

        # Step θ along the surrogate's gradient.
        point = theta.clone().requires_grad_(True)
        (gradient,) = torch.autograd.grad(self.net(point.unsqueeze(0)).sum(), point)
        self.optimizer.zero_grad(set_to_none=True)
        self.theta.grad = gradient * scale
        self.optimizer.step()


class ZeroGradsLoop:
    def __init__(self, x0: torch.Tensor, *, seed: int, kernels: str = "torch") -> None:
        # The paper's sizes, which the reference loop writes out: 3 x 64, B = 2, lr 1e-3,
        # θ's lr 0.5σ, and each fit on the new batch only (replay=1).
        self.optimizer = zg.ZeroGrads(
            x0,
            sigma=1.0,
            lr=0.5,
            seed=seed,
            batch_size=2,
            surrogate_kwargs={"hidden": (64, 64, 64)},
            surrogate_lr=1e-3,
            replay=1,
            dtype=x0.dtype,
            kernels=kernels,
        )

    @property
    def theta(self) -> torch.Tensor:
        return self.optimizer.x

    def iterate(self, fun: Objective) -> None:
        points = self.optimizer.ask()
        self.optimizer.tell(points, fun(points))


class KernelFloorLoop:
    """The kernels an iteration cannot skip if its results are to equal the reference's.

    These are the reference's two draws of random numbers and the objective. Per surrogate
    update come the first layer's two d x 64 matrix products and the fused Adam kernel over all
    weights. Last come the θ gradient's two d x 64 products and θ's fused Adam kernel. They are
    the same torch calls on the same shapes, without the small operations in between.
    Bit-identical results need the same kernels, so this time bounds how far any
    reimplementation in torch can get below the reference.
    """

    def __init__(self, x0: torch.Tensor, *, seed: int) -> None:
        dim = x0.numel()
        self.generator = torch.Generator().manual_seed(seed)
        self.theta = x0.clone()
        self.weight = torch.randn(64, dim) * 0.01
        self.bias = torch.zeros(64)
        self.weights = torch.zeros(64 * dim + 2 * 64 * 64 + 64 + 3 * 64 + 1)
        self.buffers = [torch.zeros_like(self.weights) for _ in range(3)]
        self.theta_buffers = [torch.zeros_like(self.theta) for _ in range(3)]
        self.steps = [torch.zeros(()), torch.zeros(())]
        self.weight_grad = torch.empty(64, dim)
        self.row = torch.ones(1, 64)

    def iterate(self, fun: Objective) -> None:
        theta = self.theta
        eps = torch.randn((2, theta.numel()), generator=self.generator)
        points = torch.cat([theta + eps, theta - eps])
        offsets = torch.randn(points.shape, generator=self.generator) * 0.1
        fun(points - offsets)
        gradient_rows = torch.ones(4, 64)
        for _ in range(3):
            torch.addmm(self.bias, points, self.weight.t())
            torch.mm(gradient_rows.t(), points, out=self.weight_grad)
            self._adam(self.weights, *self.buffers, self.steps[0])
        torch.addmm(self.bias, theta.unsqueeze(0), self.weight.t())
        gradient = self.row.mm(self.weight).squeeze(0)
        self._adam(theta, gradient, *self.theta_buffers[1:], self.steps[1])

    @staticmethod
    def _adam(
        param: torch.Tensor,
        grad: torch.Tensor,
        exp_avg: torch.Tensor,
        exp_avg_sq: torch.Tensor,
        step: torch.Tensor,
    ) -> None:
        step += 1
        torch._fused_adam_(
            [param],
            [grad],
            [exp_avg],
            [exp_avg_sq],
            [],
            [step],
            amsgrad=False,
            lr=1e-3,
            beta1=0.9,
            beta2=0.999,
            weight_decay=0.0,
            eps=1e-8,
            maximize=False,
        )


def time_per_iteration(
    loop: ZeroGradsLoop | ReferenceLoop | KernelFloorLoop, fun: Objective, count: int
) -> float:
    start = time.perf_counter()
    for _ in range(count):
        loop.iterate(fun)
    return (time.perf_counter() - start) / count


def compare_speed(dim: int, rounds: int, count: int) -> dict[str, float]:
    """Return the median seconds per iteration of each loop, measured in alternating rounds."""
    fun = quadratic(dim)
    x0 = torch.full((dim,), 100.0)
    loops = {
        "zerograds": ZeroGradsLoop(x0, seed=0),
        "zerograds, numba": ZeroGradsLoop(x0, seed=0, kernels="numba"),
        "reference (fused Adam)": ReferenceLoop(x0, seed=0, fused=True),
        "reference (default Adam)": ReferenceLoop(x0, seed=0, fused=False),
        "kernels alone": KernelFloorLoop(x0, seed=0),
    }
    for loop in loops.values():
        time_per_iteration(loop, fun, 10)
    samples: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(rounds):
        for name, loop in loops.items():
            samples[name].append(time_per_iteration(loop, fun, count))
    return {name: statistics.median(times) for name, times in samples.items()}


def compare_trajectories(dim: int, iterations: int) -> tuple[float, float]:
    """Return the largest |θ difference| and the final f(θ) of zerograds against the reference."""
    fun = quadratic(dim)
    x0 = torch.full((dim,), 100.0)
    ours = ZeroGradsLoop(x0, seed=0)
    reference = ReferenceLoop(x0, seed=0, fused=True)
    largest = 0.0
    for _ in range(iterations):
        ours.iterate(fun)
        reference.iterate(fun)
        difference = float((ours.theta - reference.theta.detach()).abs().max())
        largest = max(largest, difference)
    return largest, float(fun(ours.theta.unsqueeze(0)))


def numba_divergence(dim: int, iterations: int, dtype: torch.dtype) -> list[tuple[int, float]]:
    """Return (iteration, largest |θ difference|) of kernels="numba" against "torch", and of
    "torch" against itself started one unit in the last place away, at a few iterations."""
    fun = quadratic(dim)
    x0 = torch.full((dim,), 100.0, dtype=dtype)
    nudged = x0.clone()
    nudged[0] = torch.nextafter(x0[0], torch.tensor(200.0, dtype=dtype))
    loops = (
        ZeroGradsLoop(x0, seed=0),
        ZeroGradsLoop(x0, seed=0, kernels="numba"),
        ZeroGradsLoop(nudged, seed=0),
    )
    marks = []
    for iteration in range(1, iterations + 1):
        for loop in loops:
            loop.iterate(fun)
        if iteration in (1, 10, 50, 100, 150, 200, 300):
            base = loops[0].theta
            marks.append(
                (
                    iteration,
                    float((loops[1].theta - base).abs().max()),
                    float((loops[2].theta - base).abs().max()),
                )
            )
    return marks


def default_settings_time(dim: int, warmup: int, rounds: int, count: int) -> dict[str, float]:
    """Return the median seconds per iteration of zerograds' default settings, per kernels.

    The torch optimizer first runs ``warmup`` iterations, so that the replay buffer is full,
    and the numba one starts from its state.
    """
    fun = quadratic(dim)
    optimizers = {
        kernels: zg.ZeroGrads(torch.full((dim,), 100.0), sigma=1.0, lr=0.5, seed=0, kernels=kernels)
        for kernels in ("torch", "numba")
    }

    def run(optimizer: zg.ZeroGrads, iterations: int) -> float:
        start = time.perf_counter()
        for _ in range(iterations):
            points = optimizer.ask()
            optimizer.tell(points, fun(points))
        return (time.perf_counter() - start) / iterations

    # Both start from the same state, so that their replay buffers contain as many points.
    run(optimizers["torch"], warmup)
    optimizers["numba"].load_state_dict(optimizers["torch"].state_dict())
    samples: dict[str, list[float]] = {name: [] for name in optimizers}
    for _ in range(rounds):
        for name, optimizer in optimizers.items():
            samples[name].append(run(optimizer, count))
    return {name: statistics.median(times) for name, times in samples.items()}


def iteration_time_drift(
    dim: int, total: int, window: int, kernels: str = "torch"
) -> tuple[float, float]:
    """Return the seconds per iteration around iteration 100 and over the last ``window``."""
    fun = quadratic(dim)
    loop = ZeroGradsLoop(torch.full((dim,), 100.0), seed=0, kernels=kernels)
    time_per_iteration(loop, fun, 100 - window // 2)
    early = time_per_iteration(loop, fun, window)
    time_per_iteration(loop, fun, total - (100 + window // 2) - window)
    late = time_per_iteration(loop, fun, window)
    return early, late


def peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="also time d = 10,000")
    parser.add_argument("--long", action="store_true", help="time iteration 100 vs 10,000")
    parser.add_argument(
        "--defaults",
        action="store_true",
        help="only time the library's default settings (replay buffer full) at d = 1000",
    )
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds per d")
    parser.add_argument("--count", type=int, default=100, help="iterations per round")
    parser.add_argument("--agreement-iterations", type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"# {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} torch thread"
    )

    if args.defaults:
        times = default_settings_time(1000, 800, args.rounds, 50)
        print(
            "\ndefault settings (B = 4, 2 x 256, replay 32) at d = 1000 after 800 iterations: "
            f"kernels='torch' {times['torch'] * 1e3:.2f} ms/iter, kernels='numba' "
            f"{times['numba'] * 1e3:.2f} ms/iter, ratio {times['torch'] / times['numba']:.2f}x"
        )
        return

    dims = [10, 100, 1000] + ([10_000] if args.large else [])
    print(
        "\n| d | zerograds ms/iter | reference, fused Adam | ratio | "
        "reference, default Adam | ratio | kernels alone | ratio | "
        "zerograds, kernels=numba | ratio to default Adam | peak RSS so far (MiB) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for dim in dims:
        times = compare_speed(dim, args.rounds, args.count if dim < 10_000 else 20)
        ours = times["zerograds"]
        fused = times["reference (fused Adam)"]
        plain = times["reference (default Adam)"]
        floor = times["kernels alone"]
        compiled = times["zerograds, numba"]
        print(
            f"| {dim} | {ours * 1e3:.3f} | {fused * 1e3:.3f} | {fused / ours:.2f}x | "
            f"{plain * 1e3:.3f} | {plain / ours:.2f}x | {floor * 1e3:.3f} | "
            f"{plain / floor:.2f}x | {compiled * 1e3:.3f} | {plain / compiled:.2f}x | "
            f"{peak_rss_mib():.0f} |",
            flush=True,
        )

    print(f"\nagreement with the fused-Adam reference over {args.agreement_iterations} iterations:")
    print("| d | max abs θ difference over all iterations | f(θ) at the end (start: d·4900) |")
    print("|---|---|---|")
    for dim in (10, 1000):
        largest, final = compare_trajectories(dim, args.agreement_iterations)
        print(f"| {dim} | {largest:.3g} | {final:.6g} |")

    print(
        "\nd = 1000, largest |θ difference| of kernels='numba' against 'torch', and of 'torch' "
        "against itself from x0 one unit in the last place away:"
    )
    print("| dtype | iteration | numba against torch | torch, x0 nudged |")
    print("|---|---|---|---|")
    for dtype in (torch.float64, torch.float32):
        for iteration, numba_gap, nudged_gap in numba_divergence(1000, 300, dtype):
            print(f"| {dtype} | {iteration} | {numba_gap:.3g} | {nudged_gap:.3g} |")

    if args.long:
        print("\nd = 1000, seconds per iteration over 100 iterations:")
        for kernels in ("torch", "numba"):
            early, late = iteration_time_drift(1000, 10_000, 100, kernels)
            print(
                f"kernels={kernels!r}: around iteration 100: {early * 1e3:.3f} ms; iterations "
                f"9,900-10,000: {late * 1e3:.3f} ms; ratio {late / early:.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
