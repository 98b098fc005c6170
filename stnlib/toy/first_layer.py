"""Real first layers: random, trained on upright MNIST, or made rotation invariant, and their misalignment.

The misalignment curves are the book's one measure (:func:`stnlib.measures.rotation_misalignment`,
:func:`stnlib.measures.translation_misalignment`) with Γ = conv + ReLU of the layer, the MNIST
normalisation applied after transforming the raw image, as in training.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stnlib import measures
from stnlib import nn as networks
from stnlib.data import NORMALIZATION, mnist_arrays
from stnlib.profiles import TrainSettings
from stnlib.train import TrainState, train_step

#: MNIST normalisation (mean, std) of the rotated-MNIST experiment; the trained layer expects it.
MNIST_NORMALIZATION: tuple[float, float] = NORMALIZATION["mnist-rot"]


def curve_angles(step: int) -> list[int]:
    """Angles in degrees from -180 to 180 every ``step``, plus every multiple of 45° (always shown)."""
    if step <= 0:
        raise ValueError(f"step must be a positive number of degrees, got {step}")
    return sorted(set(range(-180, 181, step)) | set(range(-180, 181, 45)))


ConvLike = nn.Conv2d | Tensor


def _as_conv_params(conv: ConvLike) -> tuple[Tensor, Tensor | None, int | tuple[int, int]]:
    if isinstance(conv, nn.Conv2d):
        if conv.groups != 1 or conv.dilation != (1, 1) or conv.stride != (1, 1):
            raise ValueError("conv must have stride 1, dilation 1 and groups 1 (a plain first conv layer)")
        if isinstance(conv.padding, str):
            raise ValueError(f"conv.padding must be numeric, got {conv.padding!r}")
        return conv.weight, conv.bias, conv.padding
    if isinstance(conv, Tensor) and conv.dim() == 4:
        return conv, None, 0
    raise ValueError(f"conv must be an nn.Conv2d or a 4-D weight tensor [C_out, C_in, k, k], got {type(conv).__name__}")


def conv_features(conv: ConvLike, images: Tensor,
                  normalization: tuple[float, float] | None = None) -> Tensor:
    """First-layer feature maps ``ReLU(conv((images - mean) / std))`` (conv + ReLU, before any pooling).

    Args:
        conv: an ``nn.Conv2d`` (stride 1) or a weight tensor (then no bias and no padding).
        images: ``N×C×H×W`` raw images (MNIST: in ``[0, 1]``).
        normalization: ``(mean, std)`` applied after any transformation of the raw image, as in training.
    """
    weight, bias, padding = _as_conv_params(conv)
    x = images if normalization is None else (images - normalization[0]) / normalization[1]
    with torch.no_grad():
        return F.relu(F.conv2d(x.to(weight.dtype), weight, bias, padding=padding))


def _gamma(conv: ConvLike, normalization: tuple[float, float] | None):
    return lambda x: conv_features(conv, x, normalization)


def rotation_misalignment_curve(conv: ConvLike, images: Tensor, angles: Iterable[float], *,
                                normalization: tuple[float, float] | None = None, margin: float = 1.0,
                                batch_size: int = 256) -> Tensor:
    """:func:`stnlib.measures.rotation_misalignment` with Γ = :func:`conv_features` of ``conv``.

    ``images`` are raw (MNIST: ``[0, 1]``, zero background); ``normalization`` is applied after rotating.
    Returns ``[len(angles)]`` float64 mean relative errors.
    """
    return measures.rotation_misalignment(_gamma(conv, normalization), images, angles, margin=margin,
                                          batch_size=batch_size)


def translation_misalignment_curve(conv: ConvLike, images: Tensor, shifts: Iterable[tuple[int, int]], *,
                                   normalization: tuple[float, float] | None = None,
                                   batch_size: int = 256) -> Tensor:
    """:func:`stnlib.measures.translation_misalignment` with Γ = :func:`conv_features` of ``conv`` (stride 1)."""
    return measures.translation_misalignment(_gamma(conv, normalization), images, shifts, batch_size=batch_size)


def random_first_layer(seed: int = 0, *, out_channels: int = 64, kernel_size: int = 9) -> nn.Conv2d:
    """A randomly initialised first conv layer like the MNIST CNN's: ``Conv2d(1, 64, 9)``, no padding.

    PyTorch's default (Kaiming-uniform) initialisation, drawn from ``torch.manual_seed(seed)`` inside a
    forked RNG, so the global random state is left untouched and the layer is the same on every run.
    With the default sizes it equals conv1 of ``build_model("cnn", "mnist-rot")`` built under the same
    seed, i.e. the layer that :func:`train_mnist_cnn` starts from.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Conv2d(1, out_channels, kernel_size).requires_grad_(False)


def c4_symmetrized(conv: nn.Conv2d) -> nn.Conv2d:
    """A copy of ``conv`` whose filters are averaged over their four quarter-turn rotations.

    Each filter is then invariant to 90° rotations, so for this layer a 90° rotation of the image IS
    aligned by rotating the feature maps back (the exception the theory allows: invariant features).

    Convention:
        Rotations by ``torch.rot90`` on the kernel's last two dims (square kernels only).
    """
    if conv.kernel_size[0] != conv.kernel_size[1]:
        raise ValueError(f"c4_symmetrized needs a square kernel, got {conv.kernel_size}")
    sym = copy.deepcopy(conv)
    with torch.no_grad():
        w = conv.weight
        sym.weight.copy_(sum(torch.rot90(w, k, dims=(-2, -1)) for k in range(4)) / 4)
    return sym.requires_grad_(False)


def pointwise_layer(channels: int = 1) -> Tensor:
    """Weights of the identity ``1×1`` conv: Γf = ReLU(f) is trivially rotation invariant per pixel.

    Its rotation misalignment is pure interpolation error (bilinear rotation there and back), the floor
    against which the other curves are read.
    """
    return torch.eye(channels)[:, :, None, None]


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The first ``nn.Conv2d`` of ``model`` (for the plain CNN: conv1)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m
    raise ValueError(f"{type(model).__name__} has no nn.Conv2d layer")


def train_mnist_cnn(
    steps: int,
    seed: int = 0,
    device: str | torch.device = "cpu",
    *,
    batch_size: int = 64,
    lr: float = 0.01,
    momentum: float = 0.9,
    root: str | os.PathLike | None = None,
) -> tuple[nn.Module, list[float]]:
    """Train the plain MNIST CNN on UPRIGHT real MNIST with the library's training step.

    SGD with momentum for ``steps`` steps of ``batch_size`` training images drawn at random (normalised
    with :data:`MNIST_NORMALIZATION`), cross-entropy loss (:func:`stnlib.train.train_step`).
    Initialisation and batches come from ``seed`` (the global RNG is left untouched). ``root`` is the
    data folder (default :func:`stnlib.paths.data_root`). Returns the model (in eval mode, on CPU) and the
    loss per step.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    images, labels = mnist_arrays(train=True, root=root)
    x_all = images.to(torch.float32).div_(255.0).unsqueeze(1)
    mean, std = MNIST_NORMALIZATION
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = networks.build("cnn", "mnist-rot")
    dev = torch.device(device)
    model = model.to(dev).train()
    state = TrainState.start(model, TrainSettings(iterations=steps, batch_size=batch_size, lr=lr,
                                                  momentum=momentum))
    g = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, x_all.shape[0], (batch_size,), generator=g)
        x = ((x_all[idx] - mean) / std).to(dev)
        losses.append(train_step(state, x, labels[idx].to(dev), device=dev, precision="fp32"))
    return model.cpu().eval(), losses


def mnist_test_images(n: int = 256, *, root: str | os.PathLike | None = None) -> Tensor:
    """The first ``n`` MNIST test images as float ``n×1×28×28`` in ``[0, 1]`` (zero background).

    ``root`` is the data folder (default :func:`stnlib.paths.data_root`); see :func:`stnlib.data.ensure_mnist`.
    """
    images, _ = mnist_arrays(train=False, root=root)
    if not 0 < n <= images.shape[0]:
        raise ValueError(f"n must be in 1..{images.shape[0]}, got {n}")
    return images[:n].to(torch.float32).div_(255.0).unsqueeze(1)


def train_first_layer(
    steps: int,
    seed: int = 0,
    device: str | torch.device = "cpu",
    **kwargs,
) -> nn.Conv2d:
    """conv1 of the MNIST CNN after ``steps`` SGD-momentum steps on upright MNIST (see :func:`train_mnist_cnn`).

    The returned layer expects inputs normalised with :data:`MNIST_NORMALIZATION`; its feature maps in
    the toy chapter are conv1 + ReLU, before the max-pooling that follows it in the CNN.
    """
    model, _ = train_mnist_cnn(steps, seed, device, **kwargs)
    return copy.deepcopy(first_conv(model)).requires_grad_(False)
