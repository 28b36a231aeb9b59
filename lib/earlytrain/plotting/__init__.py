"""Figure builders. Each returns a matplotlib Figure: no show(), no file writes, no titles
(the caption belongs to the book)."""
from .style import use_style, PHASE_COLORS  # noqa: F401
