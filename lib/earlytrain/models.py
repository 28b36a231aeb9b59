"""Models as pure functions: ``Model(init, apply)`` with ``init(key, x) -> (params, aux)`` and
``apply(params, aux, x) -> f`` of shape [B, n_out].

``aux`` holds what the output depends on but training must not change: the frozen initial
parameters of a centered network, or the constant that fixes the initial output norm. Keeping
it out of ``params`` means gradients and Hessians are taken with respect to ``params`` only,
and everything stays a pytree that ``jax.vmap(model.init, in_axes=(0, None))`` batches over seeds.

FCN (SPEC 1.1): depth d = number of weight matrices, ReLU, no bias by default, critical
sigma_w^2 = 2 in hidden layers and 1 in the readout.
  * SP : W ~ N(0, sigma^2 / fan_in),  h = W x
  * NTP: W ~ N(0, 1),                 h = sqrt(sigma^2 / fan_in) W x
Both give the same function at initialisation (in distribution); they differ in how the
gradient, hence the Hessian, scales with width.

Output variants (SPEC 1.4, 5), any combination:
  * last_layer="zero"   readout initialised to 0 (f_0 = 0, lambda_0 != 0);
  * centered=True       f(x; theta) - f(x; theta_0);
  * out_alpha=a         f * a / N_0 with N_0 = <||f(x; theta_0)||_2>_x on the init batch,
                        so the initial output norm is exactly a;
  * out_exp=s           f * width^-s (s < 0 lazy, 0 standard, s > 0 rich / muP-like).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from .errors import check, check_bool, check_choice, check_int, check_positive, check_real, strict_init

ARCHS = ("fcn",)  # other architectures register themselves in ARCH_BUILDERS
PARAMETERIZATIONS = ("sp", "ntp")


@strict_init
@dataclass(frozen=True)
class ModelConfig:
    arch: str = "fcn"                # architecture name, see ARCH_BUILDERS
    depth: int = 4                   # number of weight layers d (FCN); Myrtle depth; ResNet 18/34
    width: int = 256                 # hidden width w (FCN) / channels (CNNs)
    parameterization: str = "sp"     # "sp" or "ntp"
    bias: bool = False               # biases (zero-initialised) in every dense layer
    sigma_w2: float = 2.0            # hidden-layer weight variance (2 = ReLU criticality)
    sigma_last2: float = 1.0         # readout weight variance
    n_out: int = 10                  # number of outputs k
    last_layer: str = "standard"     # "standard" or "zero"
    centered: bool = False           # train f(theta) - f(theta_0)
    out_alpha: Optional[float] = None  # fix the initial output norm to this value
    out_exp: float = 0.0             # multiply the output by width**(-out_exp)

    def __post_init__(self):
        check_choice(self.arch, "arch", ARCH_BUILDERS)
        check_int(self.width, "width", minimum=1)
        min_depth = 2 if self.arch == "fcn" else 1
        check_int(self.depth, "depth", minimum=min_depth)
        check_choice(self.parameterization, "parameterization", PARAMETERIZATIONS)
        check_choice(self.last_layer, "last_layer", ("standard", "zero"))
        check_positive(self.sigma_w2, "sigma_w2")
        check_positive(self.sigma_last2, "sigma_last2")
        check_int(self.n_out, "n_out", minimum=1)
        if self.out_alpha is not None:
            check_positive(self.out_alpha, "out_alpha")
        check_real(self.out_exp, "out_exp")
        check_bool(self.bias, "bias")
        check_bool(self.centered, "centered")
        check(not (self.last_layer == "zero" and (self.centered or self.out_alpha is not None)),
              "last_layer", "'standard' when centered or out_alpha is set (a zero output has no norm "
              "to fix and is already centered)", self.last_layer)

    def replace(self, **kw) -> "ModelConfig":
        return dataclasses.replace(self, **kw)


class Model(NamedTuple):
    """init(key, x [B, ...]) -> (params, aux); apply(params, aux, x [B, ...]) -> f [B, n_out]."""
    init: Callable[[jax.Array, jax.Array], tuple[Any, Any]]
    apply: Callable[[Any, Any, jax.Array], jax.Array]
    config: ModelConfig


class ScaledDense(nn.Module):
    """Dense layer in SP or NTP: the variance sigma^2 / fan_in sits in the init (SP) or in a
    forward multiplier (NTP). Bias, when present, is zero-initialised and unscaled."""
    features: int
    sigma2: float
    ntp: bool
    use_bias: bool = False
    zero_init: bool = False

    @nn.compact
    def __call__(self, x):
        fan_in = x.shape[-1]
        std = (self.sigma2 / fan_in) ** 0.5
        if self.zero_init:
            init = nn.initializers.zeros
        else:
            init = nn.initializers.normal(1.0 if self.ntp else std)
        w = self.param("kernel", init, (fan_in, self.features))
        y = x @ w
        if self.ntp:
            y = std * y
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,))
        return y


class FCN(nn.Module):
    """ReLU FCN: d - 1 hidden layers of width w, then a readout to n_out. Input is flattened."""
    depth: int
    width: int
    n_out: int = 10
    ntp: bool = False
    use_bias: bool = False
    sigma_w2: float = 2.0
    sigma_last2: float = 1.0
    zero_last: bool = False

    @nn.compact
    def __call__(self, x):
        h = x.reshape(x.shape[0], -1)
        for _ in range(self.depth - 1):
            h = nn.relu(ScaledDense(self.width, self.sigma_w2, self.ntp, self.use_bias)(h))
        return ScaledDense(self.n_out, self.sigma_last2, self.ntp, self.use_bias, self.zero_last)(h)


def _fcn(cfg: ModelConfig) -> nn.Module:
    return FCN(depth=cfg.depth, width=cfg.width, n_out=cfg.n_out, ntp=cfg.parameterization == "ntp",
               use_bias=cfg.bias, sigma_w2=cfg.sigma_w2, sigma_last2=cfg.sigma_last2,
               zero_last=cfg.last_layer == "zero")


ARCH_BUILDERS: dict[str, Callable[[ModelConfig], nn.Module]] = {"fcn": _fcn}


def build(cfg: ModelConfig) -> Model:
    """The Model for ``cfg``, with the output variants applied around the raw network."""
    net = ARCH_BUILDERS[cfg.arch](cfg)
    out_mult = float(cfg.width) ** (-cfg.out_exp)

    def raw(params, x):
        return net.apply({"params": params}, x) * out_mult

    def init(key, x):
        params = net.init(key, x[:1])["params"]
        aux = {}
        if cfg.centered:
            aux["params0"] = params
        if cfg.out_alpha is not None:
            norm0 = jnp.mean(jnp.linalg.norm(raw(params, x), axis=-1))
            aux["scale"] = cfg.out_alpha / norm0
        return params, aux

    def apply(params, aux, x):
        f = raw(params, x)
        if "scale" in aux:
            f = aux["scale"] * f
        if "params0" in aux:
            f0 = raw(aux["params0"], x)
            f = f - (aux["scale"] * f0 if "scale" in aux else f0)
        return f

    return Model(init, apply, cfg)


def init_many(model: Model, keys: jax.Array, x: jax.Array):
    """Initialise one network per key at once: keys [S, 2] -> (params, aux) with a leading S axis."""
    return jax.vmap(model.init, in_axes=(0, None))(keys, x)


def seed_keys(seeds) -> jax.Array:
    """PRNGKey(I) for each initialisation seed I (the paper's convention), stacked: [S, 2]."""
    return jnp.stack([jax.random.PRNGKey(int(s)) for s in seeds])


def num_params(params) -> int:
    return sum(int(p.size) for p in jax.tree_util.tree_leaves(params))


from .cnn import BUILDERS as _CNN_BUILDERS  # noqa: E402  (after ARCH_BUILDERS: cnn does not import models)

ARCH_BUILDERS.update(_CNN_BUILDERS)  # "myrtle" (SPEC 1.2) and "resnet" (SPEC 1.3)
