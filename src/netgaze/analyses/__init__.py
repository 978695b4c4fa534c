"""Dataset-wide analyses: strategies (SpRAy), dissection (units vs concepts), top examples per unit,
concepts' reference pictures and class atlas.

They sit above ``explain_dataset``, ``metrics`` and ``embed`` and write artifacts (JSON + PNG)
that the report reads. Submodules load on first use.
"""
from __future__ import annotations

import importlib
from typing import Any

_NAMES = {"strategies": "netgaze.analyses.strategies", "Strategies": "netgaze.analyses.strategies",
          "spectral_clusters": "netgaze.analyses.spectral",
          "open_explanations": "netgaze.analyses.dataset_explanations",
          "Explanations": "netgaze.analyses.dataset_explanations",
          "dissect": "netgaze.analyses.dissect", "Dissection": "netgaze.analyses.dissect",
          "top_examples": "netgaze.analyses.top_examples", "TopExamples": "netgaze.analyses.top_examples",
          "concept_references": "netgaze.analyses.concept_references",
          "ConceptReferences": "netgaze.analyses.concept_references"}


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'netgaze.analyses' has no attribute {name!r}")


__all__ = list(_NAMES)
