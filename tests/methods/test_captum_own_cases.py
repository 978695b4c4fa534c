"""netgaze answers Captum's own test cases with Captum's expected numbers (tests/methods/captum_cases.py).

Skipped when Captum is not installed: its helper models ship in the package
(``captum.testing.helpers.basic_models``). Equal to 1e-5 relative, or within the tolerance of
Captum's own test where its numbers come from random samples (LIME), with the convention named.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("captum")
sys.path.insert(0, str(Path(__file__).parent))     # captum_cases.py beside this file
import captum_cases  # noqa: E402

CASES = captum_cases.cases()


@pytest.mark.parametrize("case", CASES, ids=[f"{c.method}:{c.test.split('::')[1]}" for c in CASES])
def test_equals_captums_expected_numbers(case):
    ours, expected = case.ours_and_expected()
    if case.delta is None:
        assert captum_cases.max_rel_diff(ours, expected) <= captum_cases.REL, (ours, expected)
    else:                                           # Captum's own tolerance for its sampled numbers
        assert float((ours - expected).abs().max()) <= case.delta, (ours, expected)
        assert case.convention

