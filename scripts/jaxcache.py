"""The project's JAX compilation cache for the scripts, the tests and the benches (which put this
directory on sys.path): the setting lives in the library, ``earlytrain.jaxcache``; this module
only re-exports it. Import it before JAX (it imports neither JAX nor the rest of earlytrain)."""
from earlytrain.jaxcache import CACHE_DIR, MIN_COMPILE_SECS, enable, is_cold  # noqa: F401
