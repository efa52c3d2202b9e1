"""An independent numpy forward pass of MiniFASNet, straight from a PyTorch state dict.

Development and test tool: the reference that ``tools/convert_minifasnet.py`` and
``tests/test_liveness.py`` compare our Keras models (and their LiteRT conversions) with.
It follows the authors' ``src/model_lib/MiniFASNet.py`` (minivision-ai/Silent-Face-Anti-Spoofing
at b6d5f04) module by module, in PyTorch's own layout (NCHW, kernels ``(out, in/groups,
kh, kw)``), in float64, in eval mode (batch norms on their running statistics with
PyTorch's epsilon 1e-5; dropout inactive). It shares no code with
:mod:`faceapp.vision.minifasnet`: the number of residual units and which of them carry a
squeeze-and-excitation gate are read from the state dict's keys, widths from its shapes.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

EPSILON = 1e-5  # torch.nn.BatchNorm1d/2d default


def strip_prefix(state: Mapping[str, np.ndarray], prefix: str = "module.") -> dict[str, np.ndarray]:
    """The state dict without ``DataParallel``'s ``module.`` prefix (what the authors'
    ``_load_model`` strips), without the integer ``num_batches_tracked`` counters."""
    return {key.removeprefix(prefix): value
            for key, value in state.items() if not key.endswith("num_batches_tracked")}


def conv2d(x: np.ndarray, weight: np.ndarray, stride: int = 1, padding: int = 0) -> np.ndarray:
    """``torch.nn.functional.conv2d`` without bias for ``groups`` 1 or one group per input
    channel (told apart by the kernel's second axis): ``x`` ``(N, C, H, W)``."""
    out_channels, per_group, kh, kw = weight.shape
    channels = x.shape[1]
    depthwise = per_group == 1 and channels > 1
    if per_group != channels and not (depthwise and out_channels == channels):
        raise ValueError(f"kernel {weight.shape} does not fit {channels} input channels")
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    height = (padded.shape[2] - kh) // stride + 1
    width = (padded.shape[3] - kw) // stride + 1
    out = np.zeros((x.shape[0], out_channels, height, width), np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = padded[:, :, i:i + stride * (height - 1) + 1:stride, j:j + stride * (width - 1) + 1:stride]
            if depthwise:
                out += patch * weight[:, 0, i, j][None, :, None, None]
            else:
                out += np.einsum("nchw,oc->nohw", patch, weight[:, :, i, j], optimize=True)
    return out


def batch_norm(x: np.ndarray, state: Mapping[str, np.ndarray], prefix: str) -> np.ndarray:
    """Eval-mode batch norm over axis 1 (2-D or 4-D ``x``)."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean, var = state[f"{prefix}.running_mean"].reshape(shape), state[f"{prefix}.running_var"].reshape(shape)
    gamma, beta = state[f"{prefix}.weight"].reshape(shape), state[f"{prefix}.bias"].reshape(shape)
    return (x - mean) / np.sqrt(var + EPSILON) * gamma + beta


def prelu(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, x * weight.reshape(1, -1, 1, 1))


def conv_block(x, state, prefix: str, stride: int = 1, padding: int = 0, activation: bool = True):
    """The authors' ``Conv_block`` (conv, bn, PReLU) or, ``activation`` False, ``Linear_block``."""
    x = batch_norm(conv2d(x, state[f"{prefix}.conv.weight"], stride, padding), state, f"{prefix}.bn")
    return prelu(x, state[f"{prefix}.prelu.weight"]) if activation else x


def se_module(x, state, prefix: str):
    gate = x.mean(axis=(2, 3), keepdims=True)
    gate = np.maximum(batch_norm(conv2d(gate, state[f"{prefix}.fc1.weight"]), state, f"{prefix}.bn1"), 0)
    gate = batch_norm(conv2d(gate, state[f"{prefix}.fc2.weight"]), state, f"{prefix}.bn2")
    return x * (1 / (1 + np.exp(-gate)))


def depth_wise(x, state, prefix: str, stride: int, residual: bool):
    """The authors' ``Depth_Wise`` / ``Depth_Wise_SE`` (SE when its weights are present)."""
    branch = conv_block(x, state, f"{prefix}.conv")
    branch = conv_block(branch, state, f"{prefix}.conv_dw", stride, 1)
    branch = conv_block(branch, state, f"{prefix}.project", activation=False)
    if not residual:
        return branch
    if f"{prefix}.se_module.fc1.weight" in state:
        branch = se_module(branch, state, f"{prefix}.se_module")
    return x + branch


def reference_logits(state: Mapping[str, np.ndarray], images: np.ndarray) -> np.ndarray:
    """The 3 logits of ``images`` (float ``(N, 3, 80, 80)``, NCHW, BGR 0..255) under the
    state dict ``state`` (see :func:`strip_prefix`): float64 ``(N, 3)``."""
    x = np.asarray(images, np.float64)
    x = conv_block(x, state, "conv1", 2, 1)
    x = conv_block(x, state, "conv2_dw", 1, 1)
    for down, residual in (("conv_23", "conv_3"), ("conv_34", "conv_4"), ("conv_45", "conv_5")):
        x = depth_wise(x, state, down, 2, residual=False)
        index = 0
        while f"{residual}.model.{index}.conv.conv.weight" in state:
            x = depth_wise(x, state, f"{residual}.model.{index}", 1, residual=True)
            index += 1
    x = conv_block(x, state, "conv_6_sep")
    x = conv_block(x, state, "conv_6_dw", activation=False)  # 5x5 depthwise, no padding: 5x5 -> 1x1
    x = x.reshape(len(x), -1)  # the authors' Flatten; their ``linear`` runs as the embedding is 128, not 512
    x = x @ state["linear.weight"].T.astype(np.float64)
    x = batch_norm(x, state, "bn")
    return x @ state["prob.weight"].T.astype(np.float64)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)
