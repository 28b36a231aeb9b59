"""JAX's persistent compilation cache (<repo>/.cache/jax) for the tests and the notebook kernels
they launch, set before anything imports jax (scripts/jaxcache.py)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import jaxcache  # noqa: E402

jaxcache.enable()
