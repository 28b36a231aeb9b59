"""The book's support, never imported by a computing module: ``claims`` (the registry,
rules, records and rendering of the claims the chapters test), ``plotting`` (figure
builders), ``params`` (the chapters' parameters and presets), ``provenance`` (the data
behind every figure), ``sphinxext`` and ``pages`` (the Sphinx extensions of _config.yml).
Nothing is re-exported here."""
