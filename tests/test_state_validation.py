"""``ZeroGrads.load_state_dict`` checks every entry before it changes anything, and
``BlackBox.state_dict()`` carries the ZeroGrads core."""

from __future__ import annotations

import copy
import io
import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

import zerograds as zg

TARGET = torch.tensor([1.0, 0.5, -1.0])


def values_at(points: torch.Tensor) -> torch.Tensor:
    return ((points - TARGET) ** 2).sum(dim=1)


def make_optimizer(seed: int = 5, **options: Any) -> zg.ZeroGrads:
    options.setdefault("batch_size", 2)
    return zg.ZeroGrads([3.0, -2.0, 1.5], sigma=0.5, lr=0.2, seed=seed, **options)


def stepped(steps: int, seed: int = 5, **options: Any) -> zg.ZeroGrads:
    opt = make_optimizer(seed, **options)
    for _ in range(steps):
        points = opt.ask()
        opt.tell(points, values_at(points))
    return opt


def assert_same(a: Any, b: Any, path: str = "state") -> None:
    """Assert that two nested states hold bit-identical tensors and equal values."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, dict):
        assert list(a) == list(b), path
        for key in a:
            assert_same(a[key], b[key], f"{path}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{index}]")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype, path
        assert torch.equal(a, b), path
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), path
    else:
        assert a == b, path


def assert_continue_identically(a: zg.ZeroGrads, b: zg.ZeroGrads, steps: int) -> None:
    for _ in range(steps):
        points_a, points_b = a.ask(), b.ask()
        assert torch.equal(points_a, points_b)
        a.tell(points_a, values_at(points_a))
        b.tell(points_b, values_at(points_b))
        assert torch.equal(a.x, b.x)
    assert_same(a.state_dict(), b.state_dict())


def set_entry(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(state: dict[str, Any]) -> None:
        state[key] = value

    return change


def drop_entry(key: str) -> Callable[[dict[str, Any]], None]:
    def change(state: dict[str, Any]) -> None:
        del state[key]

    return change


def set_moment(state: dict[str, Any]) -> None:
    state["optimizer"]["state"][0]["exp_avg"] = torch.zeros(5)


def set_surrogate_weight(state: dict[str, Any]) -> None:
    state["surrogate"]["net.0.weight"] = torch.zeros(2, 2)


def set_surrogate_nan(state: dict[str, Any]) -> None:
    state["surrogate"]["net.0.bias"] = torch.full_like(state["surrogate"]["net.0.bias"], math.nan)


def drop_group_params(state: dict[str, Any]) -> None:
    state["optimizer"]["param_groups"][0]["params"] = []


def set_group_lr(value: Any) -> Callable[[dict[str, Any]], None]:
    def change(state: dict[str, Any]) -> None:
        state["optimizer"]["param_groups"][0]["lr"] = value

    return change


def set_replay_values(state: dict[str, Any]) -> None:
    points, _, anchor = state["replay"][0]
    state["replay"][0] = (points, torch.zeros(points.shape[0] + 1), anchor)


def set_replay_triple(state: dict[str, Any]) -> None:
    state["replay"][0] = (torch.zeros(4, 3),)


# (change, exception, message) for a state of a d = 3 optimizer with batch_size=2.
MALFORMED: dict[str, tuple[Callable[[dict[str, Any]], None], type[Exception], str]] = {
    "missing seed": (drop_entry("seed"), ValueError, r"`state` is missing the entries 'seed'"),
    "missing theta": (
        drop_entry("theta"),
        ValueError,
        r"`state` is missing the entries 'theta'; expected a dict from ZeroGrads\.state_dict\(\)",
    ),
    "theta of 5": (
        set_entry("theta", torch.zeros(5)),
        ValueError,
        r"`state\['theta'\]` must be a finite floating-point tensor of shape \(3,\), "
        r"got shape \(5,\): tensor\(\[0\., 0\., 0\., 0\., 0\.\]\)",
    ),
    "theta str": (
        set_entry("theta", "abc"),
        TypeError,
        r"`state\['theta'\]` must be a finite floating-point tensor of shape \(3,\), got 'abc'",
    ),
    "theta nan": (
        set_entry("theta", torch.tensor([0.0, math.nan, 1.0])),
        ValueError,
        r"`state\['theta'\]` must be a finite floating-point tensor .*, got tensor\(\[0\., nan",
    ),
    "theta int": (
        set_entry("theta", torch.tensor([1, 2, 3])),
        TypeError,
        r"`state\['theta'\]` must be a finite floating-point tensor .*, got tensor\(\[1, 2, 3\]\)",
    ),
    "pending ints": (
        set_entry("pending", (1, 2)),
        TypeError,
        r"`state\['pending'\]\[0\]` must be a finite floating-point tensor of shape \(4, 3\), "
        r"got 1",
    ),
    "pending single": (
        set_entry("pending", "ab"),
        TypeError,
        r"`state\['pending'\]` must be None or a pair \(fit points, queries\), got 'ab'",
    ),
    "pending rows": (
        set_entry("pending", (torch.zeros(8, 3), torch.zeros(8, 3))),
        ValueError,
        r"`state\['pending'\]\[0\]` must be .* shape \(4, 3\), got shape \(8, 3\)",
    ),
    "input_center None": (
        set_entry("input_center", None),
        TypeError,
        r"`state\['input_center'\]` must be a finite floating-point tensor of shape \(3,\), "
        r"got None",
    ),
    "best_x str": (
        set_entry("best_x", "str"),
        TypeError,
        r"`state\['best_x'\]` must be a finite floating-point tensor of shape \(3,\), got 'str'",
    ),
    "best_fun nan": (
        set_entry("best_fun", math.nan),
        ValueError,
        r"`state\['best_fun'\]` must be a finite number or inf, got nan",
    ),
    "best_fun str": (
        set_entry("best_fun", "low"),
        TypeError,
        r"`state\['best_fun'\]` must be a real number, got 'low'",
    ),
    "value_scale zero": (
        set_entry("value_scale", 0.0),
        ValueError,
        r"`state\['value_scale'\]` must be a finite number > 0, got 0\.0",
    ),
    "running_scale negative": (
        set_entry("running_scale", -1.0),
        ValueError,
        r"`state\['running_scale'\]` must be a finite number >= 0, got -1\.0",
    ),
    "running_scale None": (
        set_entry("running_scale", None),
        TypeError,
        r"`state\['running_scale'\]` must be a finite number >= 0, got None",
    ),
    "nfev negative": (
        set_entry("nfev", -5),
        ValueError,
        r"`state\['nfev'\]` must be an integer >= 0, got -5",
    ),
    "seed negative": (
        set_entry("seed", -1),
        ValueError,
        r"`state\['seed'\]` must be an integer >= 0, got -1",
    ),
    "iteration float": (
        set_entry("iteration", 1.5),
        TypeError,
        r"`state\['iteration'\]` must be an integer >= 0, got 1\.5",
    ),
    "streak bool": (
        set_entry("nonfinite_streak", True),
        TypeError,
        r"`state\['nonfinite_streak'\]` must be an integer >= 0, got True",
    ),
    "optimizer empty": (
        set_entry("optimizer", {}),
        ValueError,
        r"`state\['optimizer'\]` must be an optimizer state_dict with 'state' and "
        r"'param_groups', got \{\}",
    ),
    "optimizer moment shape": (
        set_moment,
        ValueError,
        r"`state\['optimizer'\]` contains 'exp_avg' of shape \(5,\) for a parameter of "
        r"shape \(3,\)",
    ),
    "optimizer group size": (
        drop_group_params,
        ValueError,
        r"`state\['optimizer'\]` has parameter groups of sizes \[0\], but this optimizer has "
        r"\[1\]",
    ),
    "optimizer lr str": (
        set_group_lr("fast"),
        TypeError,
        r"`state\['optimizer'\]\['param_groups'\]\[0\]\['lr'\]` must be a finite number >= 0, "
        r"got 'fast'",
    ),
    "optimizer lr nan": (
        set_group_lr(math.nan),
        ValueError,
        r"`state\['optimizer'\]\['param_groups'\]\[0\]\['lr'\]` must be a finite number >= 0, "
        r"got nan",
    ),
    "surrogate empty": (
        set_entry("surrogate", {}),
        ValueError,
        r"`state\['surrogate'\]` does not fit this optimizer's surrogate "
        r"\(zerograds\.surrogate\.MLP\): missing \['net\.0\.weight', .*, unexpected nothing",
    ),
    "surrogate weight shape": (
        set_surrogate_weight,
        ValueError,
        r"`state\['surrogate'\]\['net\.0\.weight'\]` has shape \(2, 2\), but this optimizer's "
        r"surrogate \(zerograds\.surrogate\.MLP\) expects \(256, 3\)",
    ),
    "surrogate nan": (
        set_surrogate_nan,
        ValueError,
        r"`state\['surrogate'\]\['net\.0\.bias'\]` must be finite, got tensor\(\[nan",
    ),
    "surrogate optimizer empty": (
        set_entry("surrogate_optimizer", {"state": {}}),
        ValueError,
        r"`state\['surrogate_optimizer'\]` must be an optimizer state_dict with 'state' and "
        r"'param_groups', got \{'state': \{\}\}",
    ),
    "replay None": (
        set_entry("replay", None),
        TypeError,
        r"`state\['replay'\]` must be a list of \(fit points, values, θ\) batches, got None",
    ),
    "replay values": (
        set_replay_values,
        ValueError,
        r"`state\['replay'\]\[0\]\[1\]` must be a finite floating-point tensor of shape \(4,\), "
        r"got shape \(5,\)",
    ),
    "replay triple": (
        set_replay_triple,
        TypeError,
        r"`state\['replay'\]\[0\]` must be a triple \(fit points, values, θ\), got \(tensor",
    ),
    "generator floats": (
        set_entry("generator", torch.zeros(3)),
        TypeError,
        r"`state\['generator'\]` must be a torch\.ByteTensor \(dtype uint8\) of shape \(5056,\), "
        r"got tensor\(\[0\., 0\., 0\.\]\)",
    ),
    "generator short": (
        set_entry("generator", torch.zeros(7, dtype=torch.uint8)),
        ValueError,
        r"`state\['generator'\]` must be a torch\.ByteTensor \(dtype uint8\) of shape \(5056,\), "
        r"got shape \(7,\)",
    ),
    "generator garbage": (
        set_entry("generator", torch.zeros(5056, dtype=torch.uint8)),
        ValueError,
        r"`state\['generator'\]` is not a valid RNG state: ",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_state_rejected_and_optimizer_unchanged(case: str) -> None:
    change, error, message = MALFORMED[case]
    source = stepped(3, seed=11)
    source.ask()  # a pending batch, so that the state has one
    state = source.state_dict()
    change(state)

    target = stepped(2, seed=5)
    before = target.state_dict()
    with pytest.raises(error, match=message):
        target.load_state_dict(state)

    assert_same(target.state_dict(), before)


def test_failed_load_leaves_theta_and_surrogate_unchanged() -> None:
    """θ must stay unchanged when a later entry, here the surrogate, fails to load."""
    state = stepped(3, seed=11).state_dict()
    state["surrogate"] = {}
    target = stepped(2, seed=5)
    theta, weights = target.x, copy.deepcopy(target.surrogate.state_dict())

    with pytest.raises(ValueError, match=r"`state\['surrogate'\]` does not fit"):
        target.load_state_dict(state)

    assert torch.equal(target.x, theta)
    assert_same(target.surrogate.state_dict(), weights)
    # The optimizer still works and continues like an untouched twin.
    assert_continue_identically(target, stepped(2, seed=5), 3)


def test_other_batch_size_rejected() -> None:
    source = stepped(1, seed=11)
    source.ask()
    state = source.state_dict()
    target = make_optimizer(batch_size=4)

    with pytest.raises(
        ValueError,
        match=r"`state` was saved with batch_size=2, but this optimizer has batch_size=4; "
        r"build it with the same batch_size",
    ):
        target.load_state_dict(state)
    assert target.batch_size == 8
    assert target.ask().shape == (8, 3)


def test_other_optimizer_class_rejected() -> None:
    state = stepped(2, optimizer=torch.optim.SGD, optimizer_kwargs={"momentum": 0.9}).state_dict()
    target = make_optimizer()

    with pytest.raises(
        ValueError,
        match=r"`state` was saved with optimizer torch\.optim\.sgd\.SGD, but this optimizer uses "
        r"torch\.optim\.adam\.Adam; build it with the same `optimizer`",
    ):
        target.load_state_dict(state)


class TinySurrogate(nn.Module):
    """A custom surrogate: one linear layer."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.layer = nn.Linear(dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x).squeeze(-1)


def test_other_surrogate_class_rejected() -> None:
    state = stepped(2).state_dict()
    target = make_optimizer(surrogate=TinySurrogate(3))

    with pytest.raises(
        ValueError,
        match=r"`state` was saved with surrogate zerograds\.surrogate\.MLP, but this optimizer "
        r"uses (tests\.)?test_state_validation\.TinySurrogate; build it with the same `surrogate`",
    ):
        target.load_state_dict(state)


def test_custom_surrogate_round_trip() -> None:
    source = stepped(3, seed=11, surrogate=TinySurrogate(3))
    restored = make_optimizer(seed=5, surrogate=TinySurrogate(3))

    restored.load_state_dict(source.state_dict())

    assert_continue_identically(source, restored, 3)


def test_other_surrogate_architecture_rejected() -> None:
    state = stepped(2, surrogate_kwargs={"hidden": (32, 32)}).state_dict()
    target = make_optimizer()

    with pytest.raises(
        ValueError,
        match=r"`state\['surrogate'\]\['net\.0\.weight'\]` has shape \(32, 3\), but this "
        r"optimizer's surrogate \(zerograds\.surrogate\.MLP\) expects \(256, 3\)\. The state "
        r"comes from another surrogate architecture",
    ):
        target.load_state_dict(state)


def test_other_surrogate_optimizer_rejected() -> None:
    state = stepped(2, surrogate_optimizer=torch.optim.SGD).state_dict()
    target = make_optimizer()

    with pytest.raises(
        ValueError,
        match=r"`state` was saved with surrogate_optimizer torch\.optim\.sgd\.SGD, but this "
        r"optimizer uses torch\.optim\.adam\.Adam",
    ):
        target.load_state_dict(state)


def test_build_entries_have_expected_values() -> None:
    state = stepped(1, surrogate_optimizer=torch.optim.SGD).state_dict()

    assert state["batch_size"] == 2
    assert state["optimizer_class"] == "torch.optim.adam.Adam"
    assert state["surrogate_class"] == "zerograds.surrogate.MLP"
    assert state["surrogate_optimizer_class"] == "torch.optim.sgd.SGD"


def test_state_without_build_entries_still_loads() -> None:
    """States written before the batch size and class names were stored stay loadable."""
    source = stepped(3, seed=11)
    state = source.state_dict()
    for key in ("batch_size", "optimizer_class", "surrogate_class", "surrogate_optimizer_class"):
        del state[key]
    restored = make_optimizer(seed=5)

    restored.load_state_dict(state)

    assert restored.seed == 11
    assert_continue_identically(source, restored, 4)


def test_float64_state_into_float32_optimizer_casts_pending() -> None:
    source = stepped(2, seed=11, dtype=torch.float64)
    source.ask()
    state = source.state_dict()
    del state["batch_size"]  # the batch sizes are equal, and this test is about the dtype
    target = make_optimizer()

    target.load_state_dict(state)

    assert target.ask().dtype == torch.float32
    assert target.best_x.dtype == torch.float32


def test_round_trip_through_torch_save_is_bit_identical() -> None:
    source = stepped(3, seed=11, replay=3)
    buffer = io.BytesIO()
    torch.save(source.state_dict(), buffer)
    buffer.seek(0)
    restored = make_optimizer(seed=5, replay=3)

    restored.load_state_dict(torch.load(buffer, weights_only=True))

    assert_continue_identically(source, restored, 5)


# ---------------------------------------------------------------------- BlackBox


def sphere(theta: torch.Tensor) -> float:
    return float(((theta - TARGET) ** 2).sum())


def gradient_of(box: zg.BlackBox, theta: torch.Tensor) -> tuple[float, torch.Tensor]:
    point = theta.clone().requires_grad_(True)
    value = box(point)
    value.backward()
    assert point.grad is not None
    return float(value.detach()), point.grad


def test_blackbox_state_dict_round_trip_gives_identical_gradients() -> None:
    trained = zg.BlackBox(sphere, 3, seed=0)
    theta = torch.tensor([2.0, -1.0, 0.5])
    for step in range(3):
        gradient_of(trained, theta + 0.1 * step)
    fresh = zg.BlackBox(sphere, 3, seed=7)

    fresh.load_state_dict(trained.state_dict())

    assert fresh.nfev == trained.nfev == 27
    assert fresh.core.seed == 0
    for step in range(4):
        point = theta - 0.2 * step
        value_a, gradient_a = gradient_of(trained, point)
        value_b, gradient_b = gradient_of(fresh, point)
        assert value_a == value_b
        assert torch.equal(gradient_a, gradient_b), f"gradients differ at step {step}"
    assert_same(fresh.core.state_dict(), trained.core.state_dict())
    assert fresh.nfev == trained.nfev == 63


def test_blackbox_state_dict_holds_core_state() -> None:
    box = zg.BlackBox(sphere, 3, seed=0)
    gradient_of(box, torch.zeros(3))

    state = box.state_dict()

    assert list(state) == ["_extra_state"]
    assert state["_extra_state"]["calls"] == 9
    assert_same(state["_extra_state"]["core"], box.core.state_dict())


class Model(nn.Module):
    """A model that feeds a linear layer's output through a BlackBox."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.layer = nn.Linear(3, 3)
        self.box = zg.BlackBox(sphere, 3, seed=seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.box(self.layer(x))


def test_model_with_blackbox_survives_torch_save() -> None:
    model = Model(seed=0)
    x = torch.tensor([0.3, -0.2, 0.1])
    for _ in range(2):
        model(x).backward()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    copy_ = Model(seed=1)

    copy_.load_state_dict(torch.load(buffer, weights_only=True))

    for _ in range(3):
        model.zero_grad()
        copy_.zero_grad()
        model(x).backward()
        copy_(x).backward()
        assert model.layer.weight.grad is not None and copy_.layer.weight.grad is not None
        assert torch.equal(model.layer.weight.grad, copy_.layer.weight.grad)


def test_blackbox_rejects_malformed_extra_state() -> None:
    box = zg.BlackBox(sphere, 3, seed=0)
    before = box.core.state_dict()

    with pytest.raises(
        TypeError,
        match=r"the BlackBox's `_extra_state` must be a dict with 'core' and 'calls' from "
        r"BlackBox\.state_dict\(\), got \{\}",
    ):
        box.load_state_dict({"_extra_state": {}})
    good = zg.BlackBox(sphere, 3, seed=1).state_dict()["_extra_state"]
    with pytest.raises(
        ValueError,
        match=r"the BlackBox's `_extra_state\['calls'\]` must be an integer >= 0, got -1",
    ):
        box.load_state_dict({"_extra_state": {**good, "calls": -1}})
    with pytest.raises(
        TypeError,
        match=r"the BlackBox's `_extra_state\['calls'\]` must be an integer >= 0, got '9'",
    ):
        box.load_state_dict({"_extra_state": {**good, "calls": "9"}})

    assert_same(box.core.state_dict(), before)
    assert box.nfev == 0


def test_blackbox_rejects_state_of_other_dim() -> None:
    state = zg.BlackBox(sphere, 3, seed=0).state_dict()
    other = zg.BlackBox(lambda t: float(t.sum()), 4, seed=0)

    with pytest.raises(ValueError, match=r"`state` is for d=3, but this optimizer has d=4"):
        other.load_state_dict(state)
