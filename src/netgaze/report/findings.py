"""The report's findings: every sentence that states a result is composed from the numbers it states.

The findings come in the seed report's order: classification (``findings_classify``), the
dataset-wide analyses (``findings_dataset``, ``findings_concepts``), then dense outputs (``findings_dense``); their
shared helpers are ``finding_text``.
"""
from __future__ import annotations

from netgaze.report.finding_text import Finding
from netgaze.report.findings_classify import CLASSIFICATION
from netgaze.report.findings_concepts import concept_atlas
from netgaze.report.findings_dataset import dissection_depth, strategy_shortcuts
from netgaze.report.findings_dense import DENSE
from netgaze.report.runinfo import RunInfo


def findings(runs: list[RunInfo]) -> list[Finding]:
    """Every finding the manifests support, in the seed report's order."""
    return [f for function in CLASSIFICATION + [strategy_shortcuts, dissection_depth, concept_atlas] + DENSE for f in function(runs)]
