"""The exactly solvable uv model (Kalra, He & Barkeshli 2023): ``model`` (the map, its
Hessian and runs of one network) and ``phases`` (its sweeps and critical constants).
Import the modules themselves (``from earlytrain.uv import model as uv``): nothing is
re-exported here."""
