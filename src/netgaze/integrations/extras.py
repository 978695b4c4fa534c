"""Optional imports: the library an integration needs, or one line that names the extra to install."""
from __future__ import annotations

import importlib
from types import ModuleType

from netgaze.errors import UserError


class MissingExtraError(UserError, ImportError):
    """An integration used without its library installed; the message names the extra."""


def require(module: str, extra: str, what: str) -> ModuleType:
    """``importlib.import_module(module)``, or ``MissingExtraError`` naming ``pip install 'netgaze[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(f"{what} needs the {module.partition('.')[0]} package, which is not installed: "
                                f"pip install 'netgaze[{extra}]'") from None
