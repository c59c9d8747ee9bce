"""Compiled kernels for ``kernels="numba"``: the MLP surrogate's fit and gradient, and Adam.

Each function here runs as one compiled call, so an iteration of the default algorithm costs a
handful of Python calls instead of the 150 or so that the torch fast path (``zerograds._fast``)
makes. The arithmetic is that of ``zerograds._fast``: the same forward and backward passes of
``zerograds.surrogate.MLP`` with the centered MSE, and ``torch.optim.Adam``'s update without
weight decay. The sums of the forward pass are reassociated and multiply-adds are fused, so
results differ from torch's in the last bits; ``tests/test_numba.py`` checks the agreement.

Arrays are numpy views of the torch tensors, so the weights, gradients and Adam moments that
these kernels write are the ones that ``state_dict`` saves. An MLP of L linear layers comes as
two typed lists, because one list costs less to pass than several. ``matrices`` contains the
L weights, each `(out, in)`, then their L gradients, L first moments and L second moments.
``vectors`` contains the biases in the same four groups. ``slopes[l]`` is the slope of the
leaky ReLU after layer ``l``, 1.0 (the identity) after an output layer without activation.

``hyper`` rows hold one Adam update's constants in the arrays' dtype:
``(lr / (1 - beta1**t), 1 / sqrt(1 - beta2**t), 1 - beta1, beta2, 1 - beta2, eps)``. The
update multiplies ``sqrt(v)`` by the second instead of dividing by its inverse as torch does:
one division per element less, and a difference of about an ulp.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numba.typed import List as TypedList

# Results must not depend on where arrays happen to lie in memory, or runs with the same seed
# would differ. The compiler checks at run time whether a loop's arrays overlap, and runs an
# unvectorized copy if they might. That copy must round exactly as the vectorized one, so
# most kernels get no fast-math flags: then both copies do the same IEEE operations in the
# same order. error_model="numpy" drops the zero check of divisions, which lets them
# vectorize without changing results.
_JIT = {"error_model": "numpy", "cache": True, "nogil": True, "fastmath": {"contract"}}
# Sums over the input width vectorize only if they may be reassociated. ``_linear`` alone
# gets that flag: its summing loop only reads memory, so it needs no overlap check and always
# runs vectorized, with one fixed order for a given length.
_JIT_SUM = {**_JIT, "fastmath": {"reassoc", "contract"}}


@njit(**_JIT)
def adam_update(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    hyper: np.ndarray,
) -> None:
    """Apply one Adam update to 1-D arrays in place."""
    step_size = hyper[0]
    inverse_root = hyper[1]
    one_minus_beta1 = hyper[2]
    beta2 = hyper[3]
    one_minus_beta2 = hyper[4]
    eps = hyper[5]
    for i in range(param.shape[0]):
        g = grad[i]
        first = exp_avg[i] + one_minus_beta1 * (g - exp_avg[i])
        second = beta2 * exp_avg_sq[i] + one_minus_beta2 * g * g
        exp_avg[i] = first
        exp_avg_sq[i] = second
        param[i] -= step_size * first / (math.sqrt(second) * inverse_root + eps)


@njit(**_JIT_SUM)
def _linear(
    layer_input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray,
    slope: float,
    z: np.ndarray,
    a: np.ndarray,
) -> None:
    """``z = layer_input @ weight.T + bias`` and ``a = leaky_relu(z, slope)``.

    Rows go in groups of four, so that each row of ``weight`` is read once per group.
    """
    rows = layer_input.shape[0]
    outputs, width = weight.shape
    grouped = rows - rows % 4
    for j in range(0, grouped, 4):
        for k in range(outputs):
            w = weight[k]
            total0 = w[0] - w[0]
            total1 = total0
            total2 = total0
            total3 = total0
            for i in range(width):
                total0 += layer_input[j, i] * w[i]
                total1 += layer_input[j + 1, i] * w[i]
                total2 += layer_input[j + 2, i] * w[i]
                total3 += layer_input[j + 3, i] * w[i]
            for offset, total in enumerate((total0, total1, total2, total3)):
                value = total + bias[k]
                z[j + offset, k] = value
                a[j + offset, k] = value if value > 0 else value * slope
    for j in range(grouped, rows):
        for k in range(outputs):
            w = weight[k]
            total = w[0] - w[0]
            for i in range(width):
                total += layer_input[j, i] * w[i]
            value = total + bias[k]
            z[j, k] = value
            a[j, k] = value if value > 0 else value * slope


@njit(**_JIT)
def _forward(
    inputs: np.ndarray,
    matrices: TypedList,
    vectors: TypedList,
    slopes: np.ndarray,
    pre: list[np.ndarray],
    act: list[np.ndarray],
    count: int,
) -> None:
    """Run the first ``count`` layers, writing pre-activations and activations."""
    layer_input = inputs
    for layer in range(count):
        _linear(layer_input, matrices[layer], vectors[layer], slopes[layer], pre[layer], act[layer])
        layer_input = act[layer]


@njit(**_JIT)
def _first_layer_update(
    inputs: np.ndarray,
    gradient: np.ndarray,
    weight: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    hyper: np.ndarray,
    row: np.ndarray,
) -> None:
    """Form the first layer's weight gradient row by row and apply Adam to each row.

    Each weight row's gradient is a sum over the input rows, taken four input rows per pass.
    With at most four input rows the sum is formed inside the Adam loop itself. The loop
    repeats ``adam_update``'s arithmetic so that the gradient never goes through memory:
    calling it on a row buffer made the whole iteration about 10 % slower at d = 1000.
    """
    rows = inputs.shape[0]
    width = row.shape[0]
    step_size = hyper[0]
    inverse_root = hyper[1]
    one_minus_beta1 = hyper[2]
    beta2 = hyper[3]
    one_minus_beta2 = hyper[4]
    eps = hyper[5]
    zero = hyper[0] - hyper[0]
    # With fewer than four input rows the missing ones count with a coefficient of zero.
    padded = inputs
    if rows < 4:
        padded = np.zeros((4, width), inputs.dtype)
        padded[:rows] = inputs
    for k in range(weight.shape[0]):
        c0 = gradient[0, k]
        c1 = gradient[1, k] if rows > 1 else zero
        c2 = gradient[2, k] if rows > 2 else zero
        c3 = gradient[3, k] if rows > 3 else zero
        if rows > 4:
            for i in range(width):
                row[i] = (
                    c0 * padded[0, i] + c1 * padded[1, i] + c2 * padded[2, i] + c3 * padded[3, i]
                )
            start = 4
            while start + 4 <= rows:
                d0 = gradient[start, k]
                d1 = gradient[start + 1, k]
                d2 = gradient[start + 2, k]
                d3 = gradient[start + 3, k]
                for i in range(width):
                    row[i] += (
                        d0 * inputs[start, i]
                        + d1 * inputs[start + 1, i]
                        + d2 * inputs[start + 2, i]
                        + d3 * inputs[start + 3, i]
                    )
                start += 4
            for j in range(start, rows):
                c = gradient[j, k]
                for i in range(width):
                    row[i] += c * inputs[j, i]
        value = weight[k]
        grad_row = grad[k]
        first_row = exp_avg[k]
        second_row = exp_avg_sq[k]
        for i in range(width):
            if rows > 4:
                g = row[i]
            else:
                g = c0 * padded[0, i] + c1 * padded[1, i] + c2 * padded[2, i] + c3 * padded[3, i]
            grad_row[i] = g
            first = first_row[i] + one_minus_beta1 * (g - first_row[i])
            second = beta2 * second_row[i] + one_minus_beta2 * g * g
            first_row[i] = first
            second_row[i] = second
            value[i] -= step_size * first / (math.sqrt(second) * inverse_root + eps)


@njit(**_JIT)
def adam_constants(
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    first_step: float,
    count: int,
    out: np.ndarray,
) -> None:
    """Fill ``out[:count]`` with the ``hyper`` rows of updates ``first_step + 1`` onwards."""
    for index in range(count):
        step = first_step + index + 1
        out[index, 0] = lr / (1 - beta1**step)
        out[index, 1] = 1 / math.sqrt(1 - beta2**step)
        out[index, 2] = 1 - beta1
        out[index, 3] = beta2
        out[index, 4] = 1 - beta2
        out[index, 5] = eps


@njit(**_JIT)
def center_values(values: np.ndarray, out: np.ndarray) -> float:
    """Write ``values`` minus their mean into ``out`` and return their standard deviation."""
    count = values.shape[0]
    mean = 0.0
    for i in range(count):
        mean += values[i]
    mean /= count
    total = 0.0
    for i in range(count):
        out[i] = values[i] - mean
        total += (values[i] - mean) ** 2
    return math.sqrt(total / count)


@njit(**_JIT)
def theta_step(
    theta: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    matrices: TypedList,
    vectors: TypedList,
    slopes: np.ndarray,
    output_activation: bool,
    scale: float,
    hyper: np.ndarray,
) -> bool:
    """Write the surrogate's gradient at θ times ``scale`` into ``grad`` and step θ by Adam.

    Returns False, without stepping, when the gradient has a non-finite entry in ``grad``'s
    dtype (a float64 product can be finite and still overflow float32).
    """
    gradient = input_gradient(
        theta.reshape((1, theta.shape[0])), matrices, vectors, slopes, output_activation
    )
    finite = True
    for i in range(theta.shape[0]):
        grad[i] = gradient[0, i] * scale
        if not math.isfinite(grad[i]):
            finite = False
    if finite:
        adam_update(theta, grad, exp_avg, exp_avg_sq, hyper)
    return finite


@njit(**_JIT)
def fit(
    inputs: np.ndarray,
    targets: np.ndarray,
    centered: bool,
    matrices: TypedList,
    vectors: TypedList,
    slopes: np.ndarray,
    hyper: np.ndarray,
) -> None:
    """Run ``hyper.shape[0]`` Adam updates of the (centered) MSE of the MLP at ``inputs``."""
    rows = inputs.shape[0]
    layers = len(matrices) // 4
    pre = [np.empty((rows, matrices[layer].shape[0]), inputs.dtype) for layer in range(layers)]
    act = [np.empty((rows, matrices[layer].shape[0]), inputs.dtype) for layer in range(layers)]
    back = [np.empty((rows, matrices[layer].shape[1]), inputs.dtype) for layer in range(layers)]
    output_grad = np.empty((rows, 1), inputs.dtype)
    row = np.empty(inputs.shape[1], inputs.dtype)
    last = layers - 1
    for update in range(hyper.shape[0]):
        constants = hyper[update]
        _forward(inputs, matrices, vectors, slopes, pre, act, layers)
        prediction = act[last]
        mean = prediction[0, 0] - prediction[0, 0]
        if centered:
            for j in range(rows):
                mean += prediction[j, 0]
            mean /= rows
        total = mean - mean
        for j in range(rows):
            value = (prediction[j, 0] - mean - targets[j]) * 2 / rows
            output_grad[j, 0] = value
            total += value
        if centered:
            for j in range(rows):
                output_grad[j, 0] -= total / rows

        gradient = output_grad
        for layer in range(last, -1, -1):
            slope = slopes[layer]
            z = pre[layer]
            outputs = z.shape[1]
            for j in range(rows):
                for k in range(outputs):
                    if not z[j, k] > 0:
                        gradient[j, k] *= slope
            bias_grad = vectors[layers + layer]
            for k in range(outputs):
                total = gradient[0, k]
                for j in range(1, rows):
                    total += gradient[j, k]
                bias_grad[k] = total
            if layer == 0:
                _first_layer_update(
                    inputs,
                    gradient,
                    matrices[0],
                    matrices[layers],
                    matrices[2 * layers],
                    matrices[3 * layers],
                    constants,
                    row,
                )
                break
            layer_input = act[layer - 1]
            weight = matrices[layer]
            weight_grad = matrices[layers + layer]
            width = weight.shape[1]
            for k in range(outputs):
                c = gradient[0, k]
                for i in range(width):
                    weight_grad[k, i] = c * layer_input[0, i]
                for j in range(1, rows):
                    c = gradient[j, k]
                    for i in range(width):
                        weight_grad[k, i] += c * layer_input[j, i]
            below = back[layer]
            for j in range(rows):
                for i in range(width):
                    below[j, i] = gradient[j, 0] * weight[0, i]
                for k in range(1, outputs):
                    c = gradient[j, k]
                    for i in range(width):
                        below[j, i] += c * weight[k, i]
            gradient = below
        for layer in range(layers):
            adam_update(
                vectors[layer],
                vectors[layers + layer],
                vectors[2 * layers + layer],
                vectors[3 * layers + layer],
                constants,
            )
            if layer > 0:
                adam_update(
                    matrices[layer].ravel(),
                    matrices[layers + layer].ravel(),
                    matrices[2 * layers + layer].ravel(),
                    matrices[3 * layers + layer].ravel(),
                    constants,
                )


@njit(**_JIT)
def input_gradient(
    inputs: np.ndarray,
    matrices: TypedList,
    vectors: TypedList,
    slopes: np.ndarray,
    output_activation: bool,
) -> np.ndarray:
    """Return the gradient of the sum of the MLP's outputs in its inputs, `(n, d)`."""
    rows = inputs.shape[0]
    layers = len(matrices) // 4
    pre = [np.empty((rows, matrices[layer].shape[0]), inputs.dtype) for layer in range(layers)]
    act = [np.empty((rows, matrices[layer].shape[0]), inputs.dtype) for layer in range(layers)]
    # The output layer's value matters only through an output activation.
    _forward(
        inputs, matrices, vectors, slopes, pre, act, layers if output_activation else layers - 1
    )
    gradient = np.ones((rows, 1), inputs.dtype)
    for layer in range(layers - 1, -1, -1):
        if layer < layers - 1 or output_activation:
            slope = slopes[layer]
            z = pre[layer]
            for j in range(rows):
                for k in range(z.shape[1]):
                    if not z[j, k] > 0:
                        gradient[j, k] *= slope
        weight = matrices[layer]
        outputs, width = weight.shape
        below = np.empty((rows, width), inputs.dtype)
        for j in range(rows):
            for i in range(width):
                below[j, i] = gradient[j, 0] * weight[0, i]
            for k in range(1, outputs):
                c = gradient[j, k]
                for i in range(width):
                    below[j, i] += c * weight[k, i]
        gradient = below
    return gradient


@njit(**_JIT)
def sample_points(
    theta: np.ndarray,
    normal: np.ndarray,
    offsets: np.ndarray,
    sigma: float,
    offset_sigma: float,
    antithetic: bool,
    fit_points: np.ndarray,
    queries: np.ndarray,
) -> None:
    """Form one batch from standard normal draws, as ``zerograds._sampling.Sampler`` does.

    ``fit_points`` is θ + σ·normal (with antithetic pairs: θ + σ·normal over θ - σ·normal)
    and ``queries`` is ``fit_points - offset_sigma * offsets``; an empty ``offsets`` means
    no smoothing.
    """
    half = normal.shape[0]
    for j in range(half):
        for i in range(theta.shape[0]):
            step = normal[j, i] * sigma
            fit_points[j, i] = theta[i] + step
            if antithetic:
                fit_points[half + j, i] = theta[i] - step
    smoothing = offsets.shape[0] > 0
    for j in range(fit_points.shape[0]):
        for i in range(theta.shape[0]):
            if smoothing:
                queries[j, i] = fit_points[j, i] - offsets[j, i] * offset_sigma
            else:
                queries[j, i] = fit_points[j, i]


@njit(**_JIT)
def fit_and_step(
    inputs: np.ndarray,
    values: np.ndarray,
    running: float,
    decay: float,
    matrices: TypedList,
    vectors: TypedList,
    slopes: np.ndarray,
    output_activation: bool,
    fit_hyper: np.ndarray,
    theta: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    theta_hyper: np.ndarray,
) -> tuple[float, float, bool]:
    """Fit and step θ in one call, for ``value_normalization="running"``.

    Centers ``values``, folds their spread into the running scale ``running`` (as
    ``ValueScale.update``) and rescales the output layer to match, fits, then steps θ.
    Returns the new running scale, the value scale of the fit and whether θ's gradient was
    finite.
    """
    layers = len(matrices) // 4
    targets = np.empty(values.shape[0], inputs.dtype)
    std = center_values(values, targets)
    previous = running
    if std > 0.0:
        running = std if running == 0.0 else decay * running + (1.0 - decay) * std
    scale = running if running > 0.0 else 1.0
    for j in range(targets.shape[0]):
        targets[j] = targets[j] / scale
    if previous > 0.0:
        ratio = previous / scale
        if not (output_activation and ratio <= 0.0):
            matrices[layers - 1][:, :] *= ratio
            vectors[layers - 1][:] *= ratio
    fit(inputs, targets, True, matrices, vectors, slopes, fit_hyper)
    finite = theta_step(
        theta,
        grad,
        exp_avg,
        exp_avg_sq,
        matrices,
        vectors,
        slopes,
        output_activation,
        scale,
        theta_hyper,
    )
    return running, scale, finite
