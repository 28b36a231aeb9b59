"""earlytrain: the tested JAX library behind the executable book.

Modules (one job each):
  errors    -- ConfigError and the validation helpers every entry point calls first.
  data      -- MNIST / Fashion-MNIST / CIFAR-10 from local raw files (tfds when online).
  models    -- FCN (SP / NTP at criticality) and output variants; Model = (init, apply).
  losses    -- MSE (0.5 * mean, as the paper) and softmax cross-entropy.
  hessian   -- Hessian-vector products, power iteration, Lanczos, dense reference.
  train     -- one early-training run as a lax.scan, vmapped over seeds and c.
  search    -- full-grid and coarse-to-fine / bisection searches over the c = 2^x grid.
  phases    -- critical constants c_loss, c_sharp, c_max and phase labels.
  sweep     -- sweeps over (dataset, depth, width, seed, c) -> xarray.Dataset.
  cache     -- content-addressed, atomic on-disk results keyed by config + code hash.
  cluster   -- where a sweep's points are computed: this process or a Dask cluster.
  uv        -- the exactly solvable uv model (two-layer linear net, one example).
  plotting  -- figure builders (return matplotlib Figures; captions live in the book).
"""

__version__ = "0.1.0"
