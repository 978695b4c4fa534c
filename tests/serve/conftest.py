"""Fixtures of the explorer's tests: tiny runs trained once per session."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def serve_runs(tmp_path_factory):
    from serve_fixtures import make_runs

    return make_runs(tmp_path_factory.mktemp("serve-runs"))
