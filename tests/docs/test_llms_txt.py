"""llms.txt (the API summary for language models) names only things that exist, and links only pages that exist."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import netgaze as ng

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "llms.txt").read_text()


def resolve(dotted: str):
    """``ng.embed.tsne`` / ``netgaze.lab.segment.train_segmentation`` -> the object (AttributeError if absent)."""
    parts = dotted.split(".")
    if parts[0] == "ng":
        obj, rest = ng, parts[1:]
    else:
        for cut in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            rest = parts[cut:]
            break
    for name in rest:
        obj = getattr(obj, name)
    return obj


def test_the_shape_of_an_llms_txt():
    lines = TEXT.splitlines()
    assert lines[0] == "# netgaze" and lines[2].startswith("> ")


def test_every_name_exists():
    names = set(re.findall(r"`((?:ng|netgaze)(?:\.[A-Za-z_]\w*)+)", TEXT))
    assert len(names) > 50
    missing = []
    for name in sorted(names):
        try:
            resolve(name)
        except (AttributeError, ImportError):
            missing.append(name)
    assert not missing, f"llms.txt names what does not exist: {missing}"


def test_every_public_top_level_name_is_listed():
    listed = set(re.findall(r"`ng\.(\w+)", TEXT))
    missing = sorted(set(ng.__all__) - listed)
    assert not missing, f"public names without a line in llms.txt (add one each, as `ng.NAME`): {missing}"


def test_every_linked_page_exists():
    links = re.findall(r"\]\((docs/[^)#]+)", TEXT)
    assert links and all((ROOT / link).exists() for link in links), [l for l in links if not (ROOT / l).exists()]
