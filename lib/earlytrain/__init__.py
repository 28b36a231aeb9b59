"""earlytrain: the tested JAX library behind the executable book.

For a model of one's own, ``earlytrain.api`` (its functions are also here at the top level:
``earlytrain.phase_diagram(...)``).

Modules (one job each):
  api       -- the public entry: lambda_0, trajectories, critical constants of any model.
  errors    -- ConfigError and the validation helpers every entry point calls first.
  data      -- MNIST / Fashion-MNIST / CIFAR-10 from local raw files (tfds when online);
               Arrays (one's own x, y).
  models    -- FCN (SP / NTP at criticality), output variants, Network (one's own model);
               Model = (init, apply). cnn: the Myrtle and ResNet modules.
               initializers: JAX's weight initializers, the same draws compiled as eager.
  losses    -- MSE (0.5 * mean, as the paper) and softmax cross-entropy.
  hessian   -- Hessian-vector products, power iteration, Lanczos, dense reference.
  train     -- one early-training run as a lax.scan, vmapped over seeds and c.
  grid      -- the c = 2^x grid of the network and uv sweeps: construction, checks, limits.
  search    -- full-grid and coarse-to-fine / bisection searches over the c = 2^x grid.
  phases    -- critical constants c_loss, c_sharp, c_max and phase labels.
  sweep     -- sweeps over (dataset, depth, width, seed, c) -> xarray.Dataset.
  cache     -- content-addressed, atomic on-disk results keyed by config + code hash.
  cluster   -- where a sweep's points are computed: this process or a Dask cluster.
  jaxcache  -- the project's JAX persistent compilation cache setting.
  memory    -- the memory a point needs, checked before compute; batch sizes from the device.
  uv/       -- the exactly solvable uv model: model (the map), phases (its sweeps).
  analyses/ -- connectivity, saturation, regimes, robustness, generalisation.
  book/     -- the book's support: claims, plotting (figure builders: return Figures;
               captions live in the book), params, provenance, sphinxext, pages.
"""

__version__ = "0.1.0"

# The API's functions at the top level, imported on first use: ``import earlytrain`` stays free
# of JAX (scripts import earlytrain.jaxcache before JAX reads its environment).
_API = ("lambda_0", "trajectories", "critical_constants", "phase_diagram", "network")
__all__ = list(_API)


def __getattr__(name):
    if name in _API:
        # through importlib, not ``from . import api``: the book's build reads a chapter's library
        # from its import statements, and every chapter imports this package; a chapter that uses
        # the API imports ``earlytrain.api`` itself (book/10_your_own_model.md)
        import importlib
        return getattr(importlib.import_module(f"{__name__}.api"), name)
    raise AttributeError(f"module 'earlytrain' has no attribute {name!r}")
