"""The error for a model that cannot be built as named (its own module, so every builder file can raise it)."""
from __future__ import annotations

from netgaze.errors import UserError


class ModelError(UserError):
    """An unknown model name, a bad builder argument, or missing pretrained weights."""
