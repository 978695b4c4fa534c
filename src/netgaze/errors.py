"""The one base class for user mistakes.

Every layer of netgaze raises a subclass of :class:`UserError` for a mistake in what the
user asked or gave (a layer name, a file, a run folder, an argument). The command line maps
exactly this class to one line on stderr and exit status 2; anything else is a bug and may
show a traceback. It subclasses ``ValueError`` so that API callers catching ``ValueError``
keep working.
"""
from __future__ import annotations


class UserError(ValueError):
    """A mistake in the user's input, reported in one line."""
