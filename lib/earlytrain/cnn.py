"""Convolutional architectures of the paper: Myrtle CNNs (SPEC 1.2) and ResNet-18/34 v1 without
normalisation (SPEC 1.3), as flax.linen Modules mapping x [B, H, W, C] -> f [B, n_out].

This module knows nothing of the sweeps' configurations: ``models.ARCHITECTURES`` maps the names
``"myrtle"`` and ``"resnet"`` of ``ModelConfig.arch`` to the builders here (``myrtle``,
``resnet``: keywords in, a Flax module out), and ``models.build`` applies the output variants
(zero last layer, centering, fixed output norm, width scaling) around them exactly as for the FCN
or a network of one's own. The builders check the fields that only make sense for one
architecture and raise ``ConfigError`` naming the field.

Myrtle-d (d in {5, 7, 10}; the paper's code ``model_utils.Myrtle``):
  d - 1 blocks of [3x3 conv, SAME, stride 1, no bias, W ~ N(0, sigma_w2 / (9 C_in)) untruncated
  (He for the default sigma_w2 = 2), ReLU], an avg_pool 2x2 / stride 2 after the blocks listed in
  ``POOL_LIST[d]`` (0-based), then two more avg_pools, flatten, Dense(n_out, no bias) with a
  truncated normal of variance sigma_last2 / fan_in (flax's lecun_normal for the default 1).
  CIFAR-10 (32 px): 32 -> 16 -> 8 -> 4 -> 2 -> 1. For 28-px images the last pool is dropped
  (28 -> 14 -> 7 -> 3 -> 1, as the code's README says); in general the second extra pool is
  skipped when the map is already 1x1. Width w = channels of every conv.

ResNet-18/34 v1 (the Flax ImageNet example's ResNetV1 with norm = identity):
  stem 7x7 conv stride 2, padding 3 -> ReLU -> max_pool 3x3 stride 2 SAME; stages [2, 2, 2, 2]
  (18) or [3, 4, 6, 3] (34) of basic blocks ReLU(x + conv3x3(ReLU(conv3x3(x)))) with w * 2^i
  filters, stride 2 in the first block of stages i > 0 and a 1x1 projection conv when the shape
  changes; global mean pool -> Dense(n_out) with bias (zero-init). Every conv has no bias and the
  flax default init (lecun_normal: truncated normal, Var = 1/fan_in), not He. w = 64 is the
  standard ResNet-18 (11.17 M parameters with a 10-class head and no BatchNorm).

Convolutions on CPU (``conv_impl``). XLA's CPU backend runs a convolution fast only in its
canonical layout. The gradients of a convolution with respect to its kernel and its input are
convolutions in other layouts, which XLA rewrites into the canonical one at the top level of a
program but not inside a ``while`` loop, where it falls back to a generic convolution loop.
Every sharpness measurement (a Lanczos ``lax.scan`` of Hessian-vector products) and every SGD
step of a run (a ``lax.scan`` over steps) is inside such a loop: bench/bench_cnn_sharpness.py
measured a Hessian-vector product through one 3x3 conv layer with 32 channels tens of times
slower inside a loop than at the top level. ``conv_impl="patches"`` computes the same
convolution as ``patches(x) @ kernel.reshape(kh * kw * C_in, C_out)``, the patches being
kh * kw strided slices of the padded input (``conv_patches``); all its derivatives are matrix
products, slices and pads, which XLA runs at full speed anywhere. It keeps nn.Conv's parameters
(names, shapes, init), so both implementations are the same network and give the same numbers
up to float rounding (tests/test_cnn.py). With "patches" the Myrtle's 2x2 average pools are a
reshape and a mean (``avg_pool_2x2``), whose derivatives are also cheaper in a loop than
reduce_window's. ``None`` picks ``default_conv_impl()``: "patches" on CPU, XLA's convolution and
pooling ("xla") on accelerators.
"""
from __future__ import annotations

import functools
from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from . import initializers
from .errors import check, check_choice

POOL_LIST = {5: (1, 2, 3), 7: (1, 3, 5), 10: (2, 5, 8)}  # blocks followed by an avg_pool
RESNET_STAGES = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}  # basic blocks per stage
CONV_IMPLS = ("patches", "xla")


def default_conv_impl() -> str:
    """"patches" on CPU (see the module docstring), "xla" (lax.conv_general_dilated) elsewhere."""
    return "patches" if jax.default_backend() == "cpu" else "xla"


def conv_patches(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                 dimension_numbers=None, feature_group_count=1, precision=None):
    """2-d convolution x [B, H, W, C_in] * kernel [kh, kw, C_in, C_out] -> [B, H', W', C_out] as a
    matrix product of the input's patches with the flattened kernel.

    A drop-in for ``lax.conv_general_dilated`` in the layout nn.Conv uses (NHWC, HWIO), without
    dilation or feature groups: padding is "SAME", "VALID" or ((lo, hi), (lo, hi)). Like XLA's
    convolution it is a cross-correlation, y[b, i, j, o] = sum_{p, q, c} x_pad[b, s0 i + p,
    s1 j + q, c] k[p, q, c, o]."""
    check(lhs.ndim == 4 and rhs.ndim == 4, "conv", "a 2-d convolution (x [B, H, W, C], kernel "
          "[kh, kw, C_in, C_out])", (lhs.shape, rhs.shape))
    if dimension_numbers is not None:
        dn = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
        check(tuple(dn) == ((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2)), "dimension_numbers",
              "NHWC input, HWIO kernel, NHWC output (nn.Conv's layout)", dimension_numbers)
    check(all(d in (None, 1) for d in (lhs_dilation, rhs_dilation)) or
          all(tuple(d) == (1, 1) for d in (lhs_dilation, rhs_dilation) if d is not None),
          "dilation", "none (conv_impl='patches')", (lhs_dilation, rhs_dilation))
    check(feature_group_count == 1, "feature_group_count", "1 (conv_impl='patches')", feature_group_count)
    kh, kw, c_in, c_out = rhs.shape
    check(lhs.shape[-1] == c_in, "conv", f"input channels = kernel C_in = {c_in}", lhs.shape)
    s0, s1 = window_strides
    pads = (lax.padtype_to_pads(lhs.shape[1:3], (kh, kw), window_strides, padding)
            if isinstance(padding, str) else padding)
    xp = jnp.pad(lhs, ((0, 0), tuple(pads[0]), tuple(pads[1]), (0, 0)))
    ho, wo = (xp.shape[1] - kh) // s0 + 1, (xp.shape[2] - kw) // s1 + 1
    cols = [xp[:, p: p + s0 * (ho - 1) + 1: s0, q: q + s1 * (wo - 1) + 1: s1, :]
            for p in range(kh) for q in range(kw)]
    patches = cols[0] if len(cols) == 1 else jnp.concatenate(cols, axis=-1)
    return jnp.matmul(patches, rhs.reshape(kh * kw * c_in, c_out), precision=precision)


def _resolve(conv_impl: Optional[str]) -> str:
    impl = default_conv_impl() if conv_impl is None else conv_impl
    check_choice(impl, "conv_impl", CONV_IMPLS)
    return impl


def conv_module(conv_impl: Optional[str]):
    """nn.Conv with the convolution of ``conv_impl`` (None: ``default_conv_impl()``) and nn.Conv's
    default kernel init, lecun_normal, from ``initializers`` (the same draws compiled as eager)."""
    conv = functools.partial(nn.Conv, kernel_init=initializers.lecun_normal())
    if _resolve(conv_impl) == "xla":
        return conv
    return functools.partial(conv, conv_general_dilated=conv_patches)


def avg_pool_2x2(x):
    """nn.avg_pool(x, (2, 2), strides=(2, 2)) (VALID: an odd last row / column is dropped) as a
    reshape and a mean, x [B, H, W, C] -> [B, H // 2, W // 2, C]. Its derivatives are a broadcast
    and a reshape, where reduce_window's are a padded reduce_window (about 1.3x faster
    Hessian-vector products of the Myrtle-5 in a loop on this CPU)."""
    b, h, w, c = x.shape
    h2, w2 = h // 2, w // 2
    return x[:, : 2 * h2, : 2 * w2].reshape(b, h2, 2, w2, 2, c).mean(axis=(2, 4))


def pool_module(conv_impl: Optional[str]):
    """The 2x2 average pool that goes with ``conv_impl``: ``avg_pool_2x2`` with "patches",
    nn.avg_pool (XLA's reduce_window) with "xla"."""
    if _resolve(conv_impl) == "xla":
        return lambda x: nn.avg_pool(x, (2, 2), strides=(2, 2))
    return avg_pool_2x2


class Myrtle(nn.Module):
    """Myrtle-d CNN: x [B, H, W, C] -> [B, n_out] (see the module docstring)."""
    depth: int
    width: int
    n_out: int = 10
    sigma_w2: float = 2.0
    sigma_last2: float = 1.0
    use_bias: bool = False
    zero_last: bool = False
    conv_impl: Optional[str] = None  # "patches", "xla" or None (default_conv_impl())

    @nn.compact
    def __call__(self, x):
        conv_init = initializers.fan_in_scaling(self.sigma_w2, "normal")
        conv, pool = conv_module(self.conv_impl), pool_module(self.conv_impl)
        h = x
        for i in range(self.depth - 1):
            h = conv(self.width, (3, 3), padding="SAME", use_bias=self.use_bias,
                     kernel_init=conv_init, name=f"Conv_{i}")(h)
            h = nn.relu(h)
            if i in POOL_LIST[self.depth]:
                h = pool(h)
        for _ in range(2):
            if h.shape[1] > 1:  # 28 px: 3 -> 1 after the first extra pool, the second is dropped
                h = pool(h)
        h = h.reshape(h.shape[0], -1)
        last_init = (nn.initializers.zeros if self.zero_last else
                     initializers.fan_in_scaling(self.sigma_last2, "truncated_normal"))
        return nn.Dense(self.n_out, use_bias=self.use_bias, kernel_init=last_init)(h)


class BasicBlock(nn.Module):
    """ResNet v1 basic block without normalisation: ReLU(proj(x) + conv(ReLU(conv(x))))."""
    filters: int
    strides: tuple = (1, 1)
    conv_impl: Optional[str] = None

    @nn.compact
    def __call__(self, x):
        conv = conv_module(self.conv_impl)
        y = conv(self.filters, (3, 3), self.strides, use_bias=False, name="Conv_0")(x)
        y = nn.relu(y)
        y = conv(self.filters, (3, 3), use_bias=False, name="Conv_1")(y)
        residual = x
        if residual.shape != y.shape:
            residual = conv(self.filters, (1, 1), self.strides, use_bias=False, name="conv_proj")(x)
        return nn.relu(residual + y)


class ResNet(nn.Module):
    """ResNet v1 (basic blocks) without normalisation: x [B, H, W, C] -> [B, n_out]."""
    stage_sizes: Sequence[int]
    width: int
    n_out: int = 10
    zero_last: bool = False
    conv_impl: Optional[str] = None

    @nn.compact
    def __call__(self, x):
        h = conv_module(self.conv_impl)(self.width, (7, 7), (2, 2), padding=[(3, 3), (3, 3)],
                                        use_bias=False, name="conv_init")(x)
        h = nn.relu(h)
        h = nn.max_pool(h, (3, 3), strides=(2, 2), padding="SAME")
        for i, n_blocks in enumerate(self.stage_sizes):
            for j in range(n_blocks):
                strides = (2, 2) if i > 0 and j == 0 else (1, 1)
                h = BasicBlock(self.width * 2 ** i, strides, self.conv_impl)(h)
        h = jnp.mean(h, axis=(1, 2))
        kernel_init = nn.initializers.zeros if self.zero_last else initializers.lecun_normal()
        return nn.Dense(self.n_out, kernel_init=kernel_init)(h)


def myrtle(*, depth: int, width: int, n_out: int = 10, sigma_w2: float = 2.0, sigma_last2: float = 1.0,
           bias: bool = False, zero_last: bool = False, conv_impl: Optional[str] = None) -> nn.Module:
    """The Myrtle-``depth`` module: depth in {5, 7, 10}, width = channels; sigma_w2 / sigma_last2
    set the conv / readout variances (defaults 2 and 1 are the paper's); bias adds zero-init
    biases to every layer (the paper has none)."""
    check_choice(depth, "depth", tuple(POOL_LIST))
    return Myrtle(depth=depth, width=width, n_out=n_out, sigma_w2=sigma_w2, sigma_last2=sigma_last2,
                  use_bias=bias, zero_last=zero_last, conv_impl=conv_impl)


def resnet(*, depth: int, width: int, n_out: int = 10, sigma_w2: float = 2.0, sigma_last2: float = 1.0,
           bias: bool = False, zero_last: bool = False, conv_impl: Optional[str] = None) -> nn.Module:
    """The ResNet-``depth`` module: depth 18 or 34, width = filters of the first stage. The init is
    the Flax example's (lecun_normal convs, readout bias always present), so sigma_w2,
    sigma_last2 and bias must keep their defaults rather than being silently ignored."""
    check_choice(depth, "depth", tuple(RESNET_STAGES))
    check(sigma_w2 == 2.0, "sigma_w2", "the default 2.0 for arch='resnet' (its convs use the "
          "fixed lecun_normal init, SPEC 1.3)", sigma_w2)
    check(sigma_last2 == 1.0, "sigma_last2", "the default 1.0 for arch='resnet' (lecun_normal "
          "readout, SPEC 1.3)", sigma_last2)
    check(not bias, "bias", "False for arch='resnet' (convs have no bias; the readout always "
          "has a zero-init bias, SPEC 1.3)", bias)
    return ResNet(stage_sizes=RESNET_STAGES[depth], width=width, n_out=n_out, zero_last=zero_last,
                  conv_impl=conv_impl)
