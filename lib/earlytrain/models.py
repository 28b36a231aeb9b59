"""Models as pure functions: ``Model(init, apply)`` with ``init(key, x) -> (params, aux)`` and
``apply(params, aux, x) -> f`` of shape [B, n_out].

Every network reaches a sweep the same way: a *spec* (``ModelConfig`` for the book's
architectures, ``Network`` for anyone's Flax module or ``(init, apply)`` pair) gives the network
at one (depth, width) point (``spec.at(depth, width).network()``: a Flax module or a pair), and
``build`` wraps it into a ``Model``. The book's FCN, Myrtle and ResNet are rows of the read-only
table ``ARCHITECTURES`` (name -> builder of a Flax module from a ``ModelConfig``); nothing is
registered by mutation.

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

import ast
import dataclasses
import functools
import hashlib
import inspect
import types
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from . import cnn, initializers
from .errors import (ConfigError, check, check_bool, check_choice, check_int, check_positive, check_real,
                     strict_init)

PARAMETERIZATIONS = ("sp", "ntp")


@strict_init
@dataclass(frozen=True)
class ModelConfig:
    arch: str = "fcn"                # architecture name, a key of ARCHITECTURES
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
        check_choice(self.arch, "arch", ARCHITECTURES)
        check_int(self.width, "width", minimum=1)
        check_int(self.depth, "depth", minimum=ARCHITECTURES[self.arch].min_depth)  # the rest: its builder
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

    def at(self, depth: int, width: int) -> "ModelConfig":
        """This configuration at the sweep point (depth, width)."""
        return self.replace(depth=depth, width=width)

    def network(self) -> nn.Module:
        """The raw Flax module of ``arch`` (its builder checks the architecture's own fields)."""
        return ARCHITECTURES[self.arch].build(self)

    @property
    def out_mult(self) -> float:
        """The output factor width^-out_exp applied by ``build``."""
        return float(self.width) ** (-self.out_exp)


class Model(NamedTuple):
    """init(key, x [B, ...]) -> (params, aux); apply(params, aux, x [B, ...]) -> f [B, n_out].

    ``init`` is ``init_aux(init_params(key, x), x)`` when the two parts are given (``wrap`` gives
    them): the parameters' draw, and what the output variants keep beside the parameters
    (``centered``'s copy, ``out_alpha``'s scale). ``init_many`` compiles the first only."""
    init: Callable[[jax.Array, jax.Array], tuple[Any, Any]]
    apply: Callable[[Any, Any, jax.Array], jax.Array]
    config: ModelConfig
    init_params: Optional[Callable[[jax.Array, jax.Array], Any]] = None
    init_aux: Optional[Callable[[Any, jax.Array], dict]] = None


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
            init = initializers.normal(1.0 if self.ntp else std)
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


def _sp_only(cfg: ModelConfig) -> None:
    check(cfg.parameterization == "sp", "parameterization",
          f"'sp' for arch={cfg.arch!r} (only the FCN has an NTP version)", cfg.parameterization)


def _myrtle(cfg: ModelConfig) -> nn.Module:
    """arch="myrtle" (paper section 4 / SPEC 1.2): depth in {5, 7, 10}, width = channels."""
    _sp_only(cfg)
    return cnn.myrtle(depth=cfg.depth, width=cfg.width, n_out=cfg.n_out, sigma_w2=cfg.sigma_w2,
                      sigma_last2=cfg.sigma_last2, bias=cfg.bias, zero_last=cfg.last_layer == "zero")


def _resnet(cfg: ModelConfig) -> nn.Module:
    """arch="resnet" (SPEC 1.3): depth 18 or 34, width = filters of the first stage."""
    _sp_only(cfg)
    return cnn.resnet(depth=cfg.depth, width=cfg.width, n_out=cfg.n_out, sigma_w2=cfg.sigma_w2,
                      sigma_last2=cfg.sigma_last2, bias=cfg.bias, zero_last=cfg.last_layer == "zero")


class Architecture(NamedTuple):
    """A row of ``ARCHITECTURES``: ``build(cfg) -> nn.Module`` (checks the fields only this
    architecture constrains, ConfigError naming the field) and the least depth it has, which
    ``ModelConfig`` checks on construction (the exact depths, e.g. Myrtle's {5, 7, 10}, are checked
    by ``build`` at each sweep point, since a sweep sets the depth per point)."""
    build: Callable[[ModelConfig], nn.Module]
    min_depth: int


#: The book's architectures: name -> ``Architecture``. Read-only; a network of one's own is a
#: ``Network``, not a new row.
ARCHITECTURES = types.MappingProxyType({"fcn": Architecture(_fcn, 2),  # one hidden layer at least
                                        "myrtle": Architecture(_myrtle, 1),
                                        "resnet": Architecture(_resnet, 1)})


@dataclass(frozen=True)
class ModuleParams:
    """The parameters' draw of a Flax module: (key, x [B, ...]) -> params, initialised on one
    example (``x[:1]``: the parameters do not depend on the batch). Equal and hashed by the module's
    value, so that every ``Model`` of one network (its output variants, each ``build`` of it) shares
    one compiled draw in ``init_many`` (jit's static key)."""
    net: nn.Module

    def __call__(self, key, x):
        variables = self.net.init(key, x[:1])
        extra = sorted(set(variables) - {"params"})
        if extra:
            raise ConfigError(f"model: a Flax module with only 'params' variables (the sweeps train "
                              f"params only), got also the collections {extra} (e.g. BatchNorm "
                              "statistics); use a module without mutable state")
        return variables["params"]


def wrap(net, out_mult: float = 1.0, centered: bool = False, out_alpha: Optional[float] = None,
         config: Any = None) -> Model:
    """The ``Model`` of a raw network, with the output variants of the module docstring.

    ``net`` is a Flax module (its variables must be ``params`` only: no BatchNorm state) or a
    pair ``(init, apply)`` with ``init(key, x [1, ...]) -> params`` and ``apply(params, x [B, ...])
    -> f [B, k]``. A module is initialised on one example (``x[:1]``): the parameters do not
    depend on the batch."""
    if isinstance(net, nn.Module):
        raw_init = ModuleParams(net)

        def raw(params, x):
            return net.apply({"params": params}, x) * out_mult
    else:
        check(isinstance(net, tuple) and len(net) == 2 and all(callable(f) for f in net), "model",
              "a Flax module or a pair (init, apply) of functions", net)
        pair_init, pair_apply = net

        def raw_init(key, x):
            return pair_init(key, x[:1])

        def raw(params, x):
            return pair_apply(params, x) * out_mult

    def init_aux(params, x):
        aux = {}
        if centered:
            aux["params0"] = params
        if out_alpha is not None:
            norm0 = jnp.mean(jnp.linalg.norm(raw(params, x), axis=-1))
            aux["scale"] = out_alpha / norm0
        return aux

    def init(key, x):
        params = raw_init(key, x)
        return params, init_aux(params, x)

    def apply(params, aux, x):
        f = raw(params, x)
        if "scale" in aux:
            f = aux["scale"] * f
        if "params0" in aux:
            f0 = raw(aux["params0"], x)
            f = f - (aux["scale"] * f0 if "scale" in aux else f0)
        return f

    return Model(init, apply, config, raw_init, init_aux)


def build(spec) -> Model:
    """The Model of a spec at its point: a ``ModelConfig`` (the book's architectures, with its
    output variants) or a ``Network`` (a module or pair of one's own). One path for both."""
    if isinstance(spec, ModelConfig):
        return wrap(spec.network(), spec.out_mult, spec.centered, spec.out_alpha, spec)
    check(isinstance(spec, Network), "model", "a ModelConfig or a Network", spec)
    return wrap(spec.network(), config=spec)


# ---------------------------------------------------------------------------------------------
# Networks of one's own


def _source(obj) -> str:
    """The source of a function or class. For a lambda, ``inspect`` returns the whole statement
    around it (``api.phase_diagram(lambda width: M(width), ..., widths=[...])``): the lambda
    alone is kept when it is the only one there, so the call's other arguments are not part of
    the model's identity."""
    src = inspect.getsource(inspect.unwrap(obj))
    src = inspect.cleandoc(src) if src.startswith((" ", "\t")) else src
    if getattr(obj, "__name__", "") == "<lambda>":
        try:
            found = [n for n in ast.walk(ast.parse(src)) if isinstance(n, ast.Lambda)]
        except SyntaxError:  # a fragment of a longer statement: keep the text
            found = []
        if len(found) == 1:
            return ast.unparse(found[0])
    return src


def _is_plain(val) -> bool:
    """A value whose repr is its identity: numbers, strings, None, tuples / lists of them."""
    if isinstance(val, (tuple, list)):
        return all(_is_plain(v) for v in val)
    return isinstance(val, (bool, int, float, complex, str, bytes, type(None)))


def _code_names(code: types.CodeType) -> set:
    """The global names ``code`` and the code objects nested in it read."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _user_globals(code: types.CodeType, glb: dict, module: str):
    """The classes and functions of the user's module ``module`` that ``code`` (and the code
    objects nested in it) names as globals."""
    names = _code_names(code)
    return [(n, glb[n]) for n in sorted(names)
            if n in glb and isinstance(glb[n], (type, types.FunctionType))
            and getattr(glb[n], "__module__", None) == module]


# methods that dataclasses (hence every Flax module) write with exec: no source, nothing of the user's
_DATACLASS_MADE = frozenset({"__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__",
                             "__lt__", "__le__", "__gt__", "__ge__", "__getstate__", "__setstate__"})


def _hash_code(obj, h, seen: set) -> None:
    """Feed ``h`` the source of ``obj`` (a function or class of the user's) and of the user's
    functions and classes it names, recursively. OSError / TypeError when a source is missing."""
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, type):
        h.update(f"class {obj.__qualname__}\0".encode())
        if dataclasses.is_dataclass(obj):  # fields with their defaults (a Flax module's attributes)
            h.update(repr([(f.name, _value_repr(f.default)) for f in dataclasses.fields(obj)
                           if f.name not in ("parent", "name")]).encode())
        for base in obj.__bases__:
            if base.__module__ == obj.__module__:
                _hash_code(base, h, seen)
        for name, member in sorted(vars(obj).items()):
            fn = inspect.unwrap(member.__func__ if isinstance(member, (classmethod, staticmethod)) else member)
            made = (dataclasses.is_dataclass(obj) and name in _DATACLASS_MADE
                    and getattr(getattr(fn, "__code__", None), "co_filename", "") == "<string>")
            if isinstance(fn, types.FunctionType) and fn.__qualname__.startswith(obj.__qualname__ + ".") \
                    and not made:
                _hash_code(fn, h, seen)  # the methods written in the class body
        return
    fn = inspect.unwrap(obj)
    h.update(f"def {fn.__qualname__}\0".encode())
    h.update(_source(fn).encode())
    for _, dep in _user_globals(fn.__code__, fn.__globals__, fn.__module__):
        _hash_code(dep, h, seen)
    # the plain values it reads (a notebook's `depth = 3` named inside a family's lambda):
    # the same source with another value is another network
    for name in sorted(_code_names(fn.__code__)):
        val = fn.__globals__.get(name)
        if name in fn.__globals__ and _is_plain(val):
            h.update(f"{name}={val!r}\0".encode())
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):  # closed-over values
        try:
            val = cell.cell_contents
        except ValueError:
            continue
        if isinstance(val, (type, types.FunctionType)) and val.__module__ == fn.__module__:
            _hash_code(val, h, seen)
        elif _is_plain(val):
            h.update(f"{name}={val!r}\0".encode())


def _value_repr(val) -> str:
    """A value's identity that does not change between processes: a function or class by its
    qualified name (its repr holds a memory address), a submodule by its own fields."""
    if isinstance(val, nn.Module):
        return f"{type(val).__qualname__}({_field_repr(val)})"
    if isinstance(val, (types.FunctionType, types.BuiltinFunctionType, type)) or (
            callable(val) and hasattr(val, "__qualname__")):
        return f"{getattr(val, '__module__', '')}.{val.__qualname__}"
    if isinstance(val, (tuple, list)):
        return "[" + ", ".join(_value_repr(v) for v in val) + "]"
    if val is dataclasses.MISSING:
        return "MISSING"
    text = repr(val)
    # an object without a repr of its own shows its address: its type is what is stable
    return f"<{type(val).__module__}.{type(val).__qualname__}>" if " at 0x" in text else text


def _field_repr(module: nn.Module) -> str:
    return repr([(f.name, _value_repr(getattr(module, f.name))) for f in dataclasses.fields(module)
                 if f.name not in ("parent", "name")])


def source_hash(model) -> str:
    """sha256 of the source that defines ``model``: a Flax module (its class's methods, its fields'
    values, its bases of the same module), a function or an ``(init, apply)`` pair, each with the
    functions and classes of the user's module that it names (a helper called by ``__call__``) and
    the plain values (numbers, strings, tuples) of the globals and closure variables it reads.

    Raises ConfigError when a source cannot be found (a class built at run time, code typed
    into a plain ``python`` prompt): give ``version=`` instead. Code outside the user's module
    (a library it imports) is not followed: its version is the library's."""
    h = hashlib.sha256()
    try:
        if isinstance(model, nn.Module):
            _hash_code(type(model), h, set())
            h.update(_field_repr(model).encode())
        elif isinstance(model, tuple):
            for part in model:
                _hash_code(part, h, set())
        else:
            _hash_code(model, h, set())
    except (OSError, TypeError) as err:
        raise ConfigError(f"model: the source of {model!r} cannot be read ({err}), so an edit to it "
                          "could not be told from a re-run; give version='...' (change it whenever "
                          "the model changes)") from None
    return h.hexdigest()


def _takes(fn, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class Network:
    """A network of one's own for the sweeps and ``earlytrain.api``: build it with ``network()``.

    ``family`` returns, for one sweep point, a Flax module (``params`` only) or a pair
    ``(init, apply)`` with ``init(key, x [1, ...]) -> params`` and ``apply(params, x [B, ...]) ->
    f [B, k]``; it is called with the keywords of ``axes`` (a subset of ("depth", "width")) at the
    point. ``version`` identifies the code in the results cache (a source hash, or the user's
    string): two Networks with the same name, version and point are the same network, so the
    results of one are the results of the other. Equality and hashing ignore ``family`` itself
    (a new lambda on each run of a notebook is still the same network)."""
    family: Callable = field(compare=False, repr=False)
    name: str
    version: str
    axes: tuple = ()
    depth: int = 1
    width: int = 1

    def at(self, depth: int, width: int) -> "Network":
        """This network at the sweep point (depth, width); a point of an axis that ``family`` does
        not take is a label only."""
        return dataclasses.replace(self, depth=depth, width=width)

    def replace(self, **kw) -> "Network":
        return dataclasses.replace(self, **kw)

    def network(self):
        """The module or (init, apply) pair at this point."""
        net = self.family(**{a: getattr(self, a) for a in self.axes})
        if isinstance(net, list):
            net = tuple(net)
        check(isinstance(net, nn.Module) or (isinstance(net, tuple) and len(net) == 2
                                              and all(callable(f) for f in net)),
              "model", f"a Flax module or an (init, apply) pair from {self.name}", net)
        return net

    def cache_json(self) -> dict:
        """What the results cache keys on (the function objects themselves are not JSON)."""
        return {"network": self.name, "version": self.version, "depth": self.depth, "width": self.width}


def network(model, version: Optional[str] = None, name: Optional[str] = None) -> Network:
    """A ``Network`` from a Flax module, an ``(init, apply)`` pair, or a *family*: a function of
    ``width`` and/or ``depth`` (keywords) returning either, for sweeps over widths or depths.

    ``version``: the code's identity in the results cache; by default the ``source_hash`` of the
    model (an edit to its source recomputes, a re-run does not). ``name``: the label in the
    cache (default: the class or function name)."""
    if isinstance(model, Network):
        return model if version is None and name is None else model.replace(
            **({"version": f"user:{version}"} if version is not None else {}),
            **({"name": name} if name is not None else {}))
    if isinstance(model, list):
        model = tuple(model)
    is_pair = isinstance(model, tuple) and len(model) == 2 and all(callable(f) for f in model)
    check(isinstance(model, nn.Module) or is_pair or callable(model), "model",
          "a Flax module, an (init, apply) pair, or a function of width / depth returning one", model)
    if isinstance(model, nn.Module) or is_pair:
        family, axes = (lambda: model), ()
        label = type(model).__name__ if isinstance(model, nn.Module) else model[1].__qualname__
    else:
        axes = tuple(a for a in ("depth", "width") if _takes(model, a))
        check(len(axes) > 0, "model", "a function taking the keyword width and/or depth (a family)",
              model)
        family, label = model, getattr(model, "__qualname__", type(model).__name__)
    if version is not None:
        check(isinstance(version, str) and version.strip() != "", "version", "a non-empty string", version)
        ver = f"user:{version}"
    else:
        ver = "source:" + source_hash(model)
    return Network(family, name or label, ver, axes)


def init_many(model: Model, keys: jax.Array, x: jax.Array):
    """Initialise one network per key at once: keys [S, 2] -> (params, aux) with a leading S axis.

    The parameters of the book's architectures (a ``ModelConfig``) are drawn by one compiled
    program per network and shapes (kept by the persistent compilation cache): eagerly, a Flax
    ``init`` runs its ops one at a time, each compiled on its own (0.4 s per sweep point on this
    CPU). Their initializers (``initializers``) give the same draws compiled as eagerly, so the
    parameters are bit for bit those of ``model.init`` (tests/test_models.py). What the output
    variants keep beside them (``Model.init_aux``) stays eager, as ``model.init`` computes it:
    compiled, ``out_alpha``'s output norm N_0 (a reduction over the forward pass) would be rounded
    differently. The draw is keyed by the network's value (``ModuleParams``), so it serves every
    output variant of it. A network of one's own (``Network``) is initialised eagerly, as its own
    code does: compiled, the arithmetic of its initializers could be folded into other roundings."""
    if isinstance(model.config, ModelConfig) and isinstance(model.init_params, ModuleParams):
        params = _draw_compiled(model.init_params, keys, x)
        return params, jax.vmap(model.init_aux, in_axes=(0, None))(params, x)
    return jax.vmap(model.init, in_axes=(0, None))(keys, x)


@functools.partial(jax.jit, static_argnums=0)
def _draw_compiled(init_params: ModuleParams, keys: jax.Array, x: jax.Array):
    return jax.vmap(init_params, in_axes=(0, None))(keys, x)


def seed_keys(seeds) -> jax.Array:
    """PRNGKey(I) for each initialisation seed I (the paper's convention), stacked: [S, 2]."""
    return jnp.stack([jax.random.PRNGKey(int(s)) for s in seeds])


def num_params(params) -> int:
    return sum(int(p.size) for p in jax.tree_util.tree_leaves(params))

