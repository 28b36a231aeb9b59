"""What the chapters compute on top of the engine (earlytrain.sweep, train, hessian):
``connectivity`` (loss barriers, App. D), ``saturation`` (intermediate saturation, App. I),
``regimes`` (the four regimes of one long run, Fig. 1), ``robustness`` (comparing phase
diagrams of variants, App. C, J, K), ``generalisation`` (test accuracy against c).
Nothing is re-exported here."""
