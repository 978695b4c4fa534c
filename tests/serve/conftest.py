"""Fixtures of the explorer's tests: tiny runs trained once per session, served by one app per module
(in each of its two ways)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def serve_runs(tmp_path_factory):
    from serve_fixtures import make_runs

    return make_runs(tmp_path_factory.mktemp("serve-runs"))


@pytest.fixture(scope="session")
def concepts_run(serve_runs, tmp_path_factory):
    """A copy of the tiny classifier with ``artifacts/concepts`` (its concept atlas)."""
    from serve_fixtures import with_concepts

    return with_concepts(tmp_path_factory.mktemp("concepts-run"), serve_runs["cnn"])


@pytest.fixture(scope="module")
def sources(serve_runs):
    from netgaze.serve import Sources

    return Sources.from_arguments([str(serve_runs[k]) for k in ("cnn", "vae", "fcn", "evil")])


@pytest.fixture(scope="module", params=["threads", "processes"])
def client(request, sources):
    """The API served both ways: worker threads (the library's default) and a worker process
    (what ``netgaze serve`` runs): every test of the API holds for both."""
    from serve_fixtures import LOCAL_URL
    from starlette.testclient import TestClient

    from netgaze.serve import Settings, create_app

    settings = Settings(processes=request.param == "processes")
    with TestClient(base_url=LOCAL_URL, app=create_app(sources, settings), raise_server_exceptions=False) as c:
        yield c
