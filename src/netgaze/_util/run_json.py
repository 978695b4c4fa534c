"""The JSON files of a run folder read and checked: one ``RunError`` line naming the file for
anything a hostile or damaged folder can hold (not JSON, nested too deep, a 5000-digit number,
a field of the wrong type). The lab reads runs through it, and so does the report."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from netgaze.errors import RunError, one_line


def read_json(path: Path) -> Any:
    """A JSON file's value; ``RunError`` naming the file when it is not JSON, is nested too deep
    for Python's parser, or holds a number Python will not convert (a 5000-digit integer)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunError(f"{path} is damaged: not JSON ({one_line(err)[:80]})") from None
    except RecursionError:
        raise RunError(f"{path} is damaged: JSON nested too deep") from None
    except ValueError as err:  # Python's int-string conversion limit
        raise RunError(f"{path} is damaged: not usable JSON ({one_line(err)[:80]})") from None


def is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2 ** 31


def is_names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def check_field(record: dict[str, Any], key: str, ok: Any, what: str, path: Path, within: str = "") -> None:
    """``RunError`` naming ``path`` when ``record`` has ``key`` with a value ``ok`` refuses (None passes)."""
    value = record.get(key)
    if value is not None and not ok(value):
        raise RunError(f"{path} is damaged: {within}{key} must be {what}, got {one_line(repr(value))[:40]}")


def check_config(config: dict[str, Any], path: Path) -> None:
    """``RunError`` naming ``run.json`` when a field netgaze reads has the wrong type."""
    for key in ("task", "data", "data_from_run", "metric"):
        check_field(config, key, lambda v: isinstance(v, str), "a string", path)
    check_field(config, "model_args", lambda v: isinstance(v, dict), "a JSON object", path)
    check_field(config, "data_options", lambda v: isinstance(v, dict), "a JSON object", path)
    check_field(config, "classes", is_names, "a list of class names", path)
    for key in ("epochs", "batch_size"):
        check_field(config, key, is_count, "a whole number", path)
    options = config.get("data_options") or {}
    for key in ("size", "n"):
        check_field(options, key, is_count, "a whole number", path, "data_options.")
