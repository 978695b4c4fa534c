"""Callbacks that write a netgaze run folder from the user's own trainer, one line each.

* ``netgaze.integrations.lightning.RunCallback``: a ``lightning.pytorch.Callback``
  (``pip install 'netgaze[lightning]'``).
* ``netgaze.integrations.transformers.RunCallback``: a ``transformers.TrainerCallback``
  (``pip install 'netgaze[transformers]'``).

Importing ``netgaze`` (or this package) imports neither library; each module imports its own
library when it is imported, and says which extra to install when it is missing. Both write
through ``netgaze.lab.run_writer.RunWriter``: the folder is the one every command reads.
"""
from __future__ import annotations

from netgaze.integrations.extras import MissingExtraError

__all__ = ["MissingExtraError"]
