"""The package version, in one place (``netgaze.__version__`` and ``run.json`` read it)."""
VERSION = "0.1.0"
