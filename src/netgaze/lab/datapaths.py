"""Data paths in ``run.json`` that survive a move: where a run's data lies, from any working directory.

A dataset spec is a name (``"digits"``, ``"shapes"``) or names a folder (``"mnist:PATH"``,
``"folder:PATH"``, ``"voc:PATH"``, ``"tensors:PATH"``, a bare ``PATH``). When a run is trained, ``stored_data``
writes the folder as

* a path relative to the run folder when the data lies inside the run folder (the pair
  travels together: move or copy the run folder and its data comes along), or
* an absolute path otherwise, plus ``data_from_run`` (the same place relative to the run
  folder), which still finds the data after the run folder and the data were moved
  together (a project tree copied to another machine).

``resolve_data`` turns a stored spec back into one that opens from the current working
directory; runs written before this rule (paths as typed, relative to where training was
started) still open from that directory. When nothing is found the error says so and how
to point at the data again (``--data``, ``load_run(..., data=...)``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from netgaze.lab.datasets.base import DatasetError

NAMED = ("digits", "shapes")
PREFIXES = ("mnist:", "folder:", "voc:", "tensors:")
# data_options entries that are paths (image folders' split lists)
PATH_OPTIONS = ("train_list", "test_list")


def split_spec(spec: str) -> tuple[str, str | None]:
    """``"mnist:data/m"`` -> ``("mnist:", "data/m")``; a name -> ``(name, None)``; a bare path -> ``("", path)``."""
    spec = str(spec).strip()
    if spec.lower() in NAMED:
        return spec, None
    for prefix in PREFIXES:
        if spec.lower().startswith(prefix):
            return spec[:len(prefix)], spec[len(prefix):]
    return "", spec


def _store_path(path: str, run: Path) -> tuple[str, str | None]:
    """(path for run.json, path relative to the run folder or None)."""
    absolute = Path(os.path.abspath(Path(path).expanduser()))
    run_abs = Path(os.path.abspath(run))
    if absolute == run_abs or absolute.is_relative_to(run_abs):
        return absolute.relative_to(run_abs).as_posix() or ".", None
    return str(absolute), os.path.relpath(absolute, run_abs)


def stored_config(config: dict[str, Any], run: str | os.PathLike) -> dict[str, Any]:
    """``config`` with ``data`` (and path options) written for ``run.json`` (see the module notes)."""
    config = dict(config)
    prefix, path = split_spec(config.get("data", ""))
    config.pop("data_from_run", None)
    if path is not None:
        stored, from_run = _store_path(path, Path(run))
        config["data"] = prefix + stored
        if from_run is not None:
            config["data_from_run"] = prefix + from_run
    options = dict(config.get("data_options") or {})
    for key in PATH_OPTIONS:
        if isinstance(options.get(key), str):
            options[key] = _store_path(options[key], Path(run))[0]
    if options:
        config["data_options"] = options
    return config


def _candidates(config: dict[str, Any], run: Path) -> list[str]:
    """Places to look for the data, best first: as stored (relative = to the run folder), then as typed."""
    prefix, path = split_spec(config.get("data", ""))
    if path is None:
        return [prefix]
    found = []
    if Path(path).is_absolute():
        found.append(path)
    else:
        found.append(str(run / path))
    _, from_run = split_spec(config.get("data_from_run", "") or "")
    if from_run:
        found.append(str(run / from_run))
    if not Path(path).is_absolute():
        found.append(path)  # a run written before paths were stored this way: relative to the start folder
    return [prefix + p for p in found]


def resolve_data(config: dict[str, Any], run: str | os.PathLike) -> str:
    """The data spec of a run's ``config`` that opens from the current working directory.

    Raises:
        DatasetError: the data folder is in none of the places it could be (the message
            names the run, the stored path and how to point at the data again).
    """
    run = Path(run)
    candidates = _candidates(config, run)
    prefix, path = split_spec(config.get("data", ""))
    if path is None:
        return prefix
    for candidate in candidates:
        prefix, path = split_spec(candidate)
        if Path(path).exists():
            return prefix + str(Path(path).resolve())
    raise DatasetError(f"the data of run {run} ({config.get('data')}) is not there any more (moved?); "
                       "point at it again with --data PATH (load_run(..., data=PATH))")


def resolve_options(options: dict[str, Any], run: str | os.PathLike) -> dict[str, Any]:
    """``data_options`` with split-list paths stored relative to the run folder made openable."""
    options = dict(options or {})
    for key in PATH_OPTIONS:
        value = options.get(key)
        if isinstance(value, str) and not Path(value).is_absolute() and (Path(run) / value).exists():
            options[key] = str(Path(run) / value)
    return options


def same_kind(a: str, b: str) -> bool:
    """Whether two specs name the same kind of dataset (``digits``, ``shapes``, MNIST files, a folder)."""
    (pa, xa), (pb, xb) = split_spec(a), split_spec(b)
    kind = {"": "folder:", "folder:": "folder:"}
    if xa is None or xb is None:
        return pa.lower() == pb.lower()
    return kind.get(pa.lower(), pa.lower()) == kind.get(pb.lower(), pb.lower())


def same_data(old: dict[str, Any], new: str, run: str | os.PathLike) -> bool:
    """Whether a run's stored data (``old``: its ``run.json``) and a stored spec ``new`` name the same data."""
    old_prefix, old_path = split_spec(old.get("data", ""))
    new_prefix, new_path = split_spec(new)
    if old_path is None or new_path is None or old_prefix.lower() != new_prefix.lower():
        return old.get("data") == new
    try:
        was = split_spec(resolve_data(old, run))[1]
        now = split_spec(resolve_data({"data": new}, run))[1]  # a stored spec: relative = to the run folder
    except DatasetError:
        return False
    return Path(was).resolve() == Path(now).resolve()
