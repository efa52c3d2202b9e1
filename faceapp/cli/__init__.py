"""The ``faceapp`` command line: one module per command group over the core."""
