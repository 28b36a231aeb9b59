"""Convolutional architectures of the paper: Myrtle CNNs (SPEC 1.2) and ResNet-18/34 v1 without
normalisation (SPEC 1.3), as flax.linen Modules mapping x [B, H, W, C] -> f [B, n_out].

They are registered in ``models.ARCH_BUILDERS`` as ``"myrtle"`` and ``"resnet"``; the output
variants of ``ModelConfig`` (zero last layer, centering, fixed output norm, width scaling) are
applied around them by ``models.build``, exactly as for the FCN. The builders here check the
fields that only make sense for one architecture and raise ``ConfigError`` naming the field.

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
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import flax.linen as nn
import jax.numpy as jnp

from .errors import check, check_choice

if TYPE_CHECKING:  # models imports this module at its end; no runtime import the other way
    from .models import ModelConfig

POOL_LIST = {5: (1, 2, 3), 7: (1, 3, 5), 10: (2, 5, 8)}  # blocks followed by an avg_pool
RESNET_STAGES = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}  # basic blocks per stage


class Myrtle(nn.Module):
    """Myrtle-d CNN: x [B, H, W, C] -> [B, n_out] (see the module docstring)."""
    depth: int
    width: int
    n_out: int = 10
    sigma_w2: float = 2.0
    sigma_last2: float = 1.0
    use_bias: bool = False
    zero_last: bool = False

    @nn.compact
    def __call__(self, x):
        conv_init = nn.initializers.variance_scaling(self.sigma_w2, "fan_in", "normal")
        h = x
        for i in range(self.depth - 1):
            h = nn.Conv(self.width, (3, 3), padding="SAME", use_bias=self.use_bias,
                        kernel_init=conv_init)(h)
            h = nn.relu(h)
            if i in POOL_LIST[self.depth]:
                h = nn.avg_pool(h, (2, 2), strides=(2, 2))
        for _ in range(2):
            if h.shape[1] > 1:  # 28 px: 3 -> 1 after the first extra pool, the second is dropped
                h = nn.avg_pool(h, (2, 2), strides=(2, 2))
        h = h.reshape(h.shape[0], -1)
        last_init = (nn.initializers.zeros if self.zero_last else
                     nn.initializers.variance_scaling(self.sigma_last2, "fan_in", "truncated_normal"))
        return nn.Dense(self.n_out, use_bias=self.use_bias, kernel_init=last_init)(h)


class BasicBlock(nn.Module):
    """ResNet v1 basic block without normalisation: ReLU(proj(x) + conv(ReLU(conv(x))))."""
    filters: int
    strides: tuple = (1, 1)

    @nn.compact
    def __call__(self, x):
        y = nn.Conv(self.filters, (3, 3), self.strides, use_bias=False)(x)
        y = nn.relu(y)
        y = nn.Conv(self.filters, (3, 3), use_bias=False)(y)
        residual = x
        if residual.shape != y.shape:
            residual = nn.Conv(self.filters, (1, 1), self.strides, use_bias=False, name="conv_proj")(x)
        return nn.relu(residual + y)


class ResNet(nn.Module):
    """ResNet v1 (basic blocks) without normalisation: x [B, H, W, C] -> [B, n_out]."""
    stage_sizes: Sequence[int]
    width: int
    n_out: int = 10
    zero_last: bool = False

    @nn.compact
    def __call__(self, x):
        h = nn.Conv(self.width, (7, 7), (2, 2), padding=[(3, 3), (3, 3)], use_bias=False,
                    name="conv_init")(x)
        h = nn.relu(h)
        h = nn.max_pool(h, (3, 3), strides=(2, 2), padding="SAME")
        for i, n_blocks in enumerate(self.stage_sizes):
            for j in range(n_blocks):
                strides = (2, 2) if i > 0 and j == 0 else (1, 1)
                h = BasicBlock(self.width * 2 ** i, strides)(h)
        h = jnp.mean(h, axis=(1, 2))
        kernel_init = nn.initializers.zeros if self.zero_last else nn.initializers.lecun_normal()
        return nn.Dense(self.n_out, kernel_init=kernel_init)(h)


def _check_sp(cfg: "ModelConfig") -> None:
    check(cfg.parameterization == "sp", "parameterization",
          f"'sp' for arch={cfg.arch!r} (only the FCN has an NTP version)", cfg.parameterization)


def myrtle(cfg: "ModelConfig") -> nn.Module:
    """Builder for arch="myrtle": depth in {5, 7, 10}, width = channels; sigma_w2 / sigma_last2
    set the conv / readout variances (defaults 2 and 1 are the paper's); bias adds zero-init
    biases to every layer (the paper has none)."""
    check_choice(cfg.depth, "depth", tuple(POOL_LIST))
    _check_sp(cfg)
    return Myrtle(depth=cfg.depth, width=cfg.width, n_out=cfg.n_out, sigma_w2=cfg.sigma_w2,
                  sigma_last2=cfg.sigma_last2, use_bias=cfg.bias, zero_last=cfg.last_layer == "zero")


def resnet(cfg: "ModelConfig") -> nn.Module:
    """Builder for arch="resnet": depth 18 or 34, width = filters of the first stage. The init is
    the Flax example's (lecun_normal convs, readout bias always present), so sigma_w2,
    sigma_last2 and bias must keep their defaults rather than being silently ignored."""
    check_choice(cfg.depth, "depth", tuple(RESNET_STAGES))
    _check_sp(cfg)
    check(cfg.sigma_w2 == 2.0, "sigma_w2", "the default 2.0 for arch='resnet' (its convs use the "
          "fixed lecun_normal init, SPEC 1.3)", cfg.sigma_w2)
    check(cfg.sigma_last2 == 1.0, "sigma_last2", "the default 1.0 for arch='resnet' (lecun_normal "
          "readout, SPEC 1.3)", cfg.sigma_last2)
    check(not cfg.bias, "bias", "False for arch='resnet' (convs have no bias; the readout always "
          "has a zero-init bias, SPEC 1.3)", cfg.bias)
    return ResNet(stage_sizes=RESNET_STAGES[cfg.depth], width=cfg.width, n_out=cfg.n_out,
                  zero_last=cfg.last_layer == "zero")


BUILDERS = {"myrtle": myrtle, "resnet": resnet}
