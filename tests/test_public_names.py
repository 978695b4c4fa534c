"""Every public name of ``netgaze`` stays what it is, whatever was imported before.

Importing the submodule ``netgaze.analyses.dataset_explanations`` used to replace the function
``ng.explain_dataset`` with the module on the package. Each order runs in a fresh
interpreter and touches every name of ``__all__`` twice.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

SCRIPT = """
import json, sys, types
{before}
import netgaze as ng
names = list(ng.__all__)
names = {order}
first = {{n: getattr(ng, n) for n in names}}
second = {{n: getattr(ng, n) for n in names}}
import netgaze.analyses.dataset_explanations, netgaze.lab.runs, netgaze.embed.pipeline   # submodule imports afterwards
from netgaze.analyses.dataset_explanations import load_explanations
third = {{n: getattr(ng, n) for n in names}}
print(json.dumps({{n: [type(first[n]).__name__, first[n] is second[n] is third[n],
                       isinstance(first[n], types.ModuleType)] for n in names}}))
"""

ORDERS = {
    "all in order": ("", "names"),
    "submodule first, reversed": ("import netgaze.analyses.dataset_explanations", "names[::-1]"),
}

MODULES = {"viz", "lab", "datasets", "embed", "featureviz", "metrics", "studies", "report", "analyses"}


def _run(before: str, order: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(SRC), MPLBACKEND="Agg")
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(before=before, order=order)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_public_name_is_stable_in_any_import_order():
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(ORDERS, pool.map(lambda pair: _run(*pair), ORDERS.values())))
    for label, found in results.items():
        for name, (kind, same, is_module) in found.items():
            assert same, f"{label}: ng.{name} changed between lookups"
            assert is_module == (name in MODULES), f"{label}: ng.{name} is a {kind}"
        assert found["explain_dataset"][0] == "function" and found["load_explanations"][0] == "function"
    assert len({json.dumps(r, sort_keys=True) for r in results.values()}) == 1


@pytest.mark.parametrize("name", ["explain_dataset", "load_explanations", "build_report", "visualize"])
def test_lazy_names_are_cached_in_process(name):
    import netgaze as ng

    assert getattr(ng, name) is getattr(ng, name) and callable(getattr(ng, name))
