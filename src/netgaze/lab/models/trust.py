"""Trusting code that a run folder names: ``package.module:callable`` is imported only when allowed.

A run folder is untrusted input (the report and the explorer read folders from anywhere).
Rebuilding a model from an import path imports that module, which runs its code, so it is
refused unless the user allowed it, in one of three ways:

* ``trust_code=True`` (``--trust-code``): any module a run names;
* ``trust_code="mypkg"`` or ``["mypkg", "other.models"]`` (``--trust-module mypkg``): only those
  modules and their submodules;
* ``trusting_code(...)``: the same for everything this process loads inside a ``with`` block
  (what the command line does around a command; the explorer's workers do it again).

Even when trusted, only a class or a plain Python function defined in the named module (or a
submodule of it) is called: ``os:system`` (a built-in) is refused before anything runs.
Builders that installed packages register through the ``netgaze.models`` entry-point group
are installed code, trusted like netgaze itself.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Sequence, Union

from netgaze.errors import RunError

Trust = Union[bool, str, Sequence[str], None]

_PROCESS: list[Union[bool, tuple[str, ...]]] = []   # grants of enclosing ``trusting_code`` blocks


class UntrustedCodeError(RunError):
    """A run names code to import (``package.module:callable``) that the user did not trust."""


def normalize_trust(trust: Trust) -> Union[bool, tuple[str, ...]]:
    """``True`` (any module), ``False`` (none) or a tuple of trusted module names."""
    if trust is None or trust is False:
        return False
    if trust is True:
        return True
    names = (trust,) if isinstance(trust, str) else tuple(trust)
    bad = [n for n in names if not isinstance(n, str) or not _is_module_name(n)]
    if bad:
        raise RunError(f"trust_code takes True or module names such as 'mypkg.models', got {bad[0]!r}")
    return names


def _is_module_name(name: str) -> bool:
    return bool(name) and all(part.isidentifier() for part in name.split("."))


def is_trusted(module: str, trust: Trust = False) -> bool:
    """Whether ``module`` may be imported: by ``trust`` or by an enclosing ``trusting_code`` block."""
    for grant in (normalize_trust(trust), *_PROCESS):
        if grant is True or (grant and any(module == m or module.startswith(m + ".") for m in grant)):
            return True
    return False


def process_trust() -> Union[bool, list[str]]:
    """What the enclosing ``trusting_code`` blocks allow (for a worker process to allow the same)."""
    if any(g is True for g in _PROCESS):
        return True
    return sorted({m for g in _PROCESS if g for m in g})


def effective_trust(trust: Trust = False) -> Union[bool, list[str]]:
    """``trust`` joined with what the enclosing blocks allow now: what a run loaded now keeps
    for its later rebuilds (another epoch, the explorer's model copies)."""
    grant, now = normalize_trust(trust), process_trust()
    if grant is True or now is True:
        return True
    return sorted(set(grant or ()) | set(now))


@contextlib.contextmanager
def trusting_code(trust: Trust) -> Iterator[None]:
    """Inside the block, runs may name code in the trusted modules (``True``: any module)."""
    grant = normalize_trust(trust)
    _PROCESS.append(grant)
    try:
        yield
    finally:
        _PROCESS.remove(grant)


def trust_in_process(trust: Trust) -> None:
    """Allow ``trust`` for the rest of this process (the explorer's worker processes, started by a
    command that was given ``--trust-code``, allow what it allowed)."""
    grant = normalize_trust(trust)
    if grant:
        _PROCESS.append(grant)


def refuse(build: str, module: str) -> UntrustedCodeError:
    """The one-line refusal that names the options."""
    return UntrustedCodeError(
        f"the run's model is built by {build!r}, which imports and runs code from module {module!r}; a run folder "
        f"is untrusted input, so this needs trust_code=True (--trust-code), or trust_code={module.split('.')[0]!r} "
        f"(--trust-module {module.split('.')[0]}) to trust only that package")
