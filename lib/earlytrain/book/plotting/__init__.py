"""Figure builders. Each returns a matplotlib Figure: no show(), no file writes, no titles
(the caption belongs to the book). A module per kind of figure:

  style         -- colours and labels of the phases and constants, rcParams, ``detach``.
  trajectory    -- loss and sharpness over the first steps, one curve per c (Fig. 2).
  diagram       -- the phase diagram of the critical constants (Fig. 3) and their order per
                   initialisation (Fig. 4).
  variants      -- phase diagrams of network variants side by side (App. C, G, H, J, K).
  connectivity  -- loss along the interpolation and the phase diagram with c_barrier (App. D).
  saturation    -- chi(c), c_crit and the sharpness in its windows (App. I).
  regimes       -- the four regimes of training in one run (Fig. 1), the edge of stability.
  uv            -- the uv model's figures.
"""
from .style import use_style, PHASE_COLORS  # noqa: F401
