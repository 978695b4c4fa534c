"""The explorer links strategy clusters (SpRAy) to their pictures: ``GET /api/strategies``."""
from __future__ import annotations

import json
import shutil

import pytest
from starlette.testclient import TestClient

from serve_fixtures import LOCAL_URL

from netgaze.serve import Sources, create_app


@pytest.fixture(scope="module")
def spray(serve_runs, tmp_path_factory):
    """A copy of the tiny classifier run with a real strategies artifact, the run without one,
    and a copy whose artifact is a link out of the run folder."""
    from netgaze.analyses.run_studies import strategies_study

    root = tmp_path_factory.mktemp("spray")
    spray = root / "spray"
    shutil.copytree(serve_runs["cnn"], spray, ignore=shutil.ignore_patterns("artifacts"))
    artifact = strategies_study(spray, split="test", n_clusters=2, progress=False)
    linked = root / "linked"
    shutil.copytree(serve_runs["cnn"], linked, ignore=shutil.ignore_patterns("artifacts"))
    (linked / "artifacts" / "strategies").mkdir(parents=True)
    (linked / "artifacts" / "strategies" / "strategies.json").symlink_to(artifact)
    marked = root / "marked"          # the same, with class 0's last cluster surely flagged a shortcut
    shutil.copytree(spray, marked)
    data = json.loads((marked / artifact.relative_to(spray)).read_text())
    data["classes"]["0"]["summaries"][-1]["shortcut"] = True
    (marked / artifact.relative_to(spray)).write_text(json.dumps(data))
    return {"spray": spray, "plain": serve_runs["cnn"], "linked": linked, "artifact": artifact,
            "marked": marked, "marked_artifact": marked / artifact.relative_to(spray)}


@pytest.fixture(scope="module")
def client(spray):
    sources = Sources.from_arguments([str(spray[k]) for k in ("spray", "marked", "plain", "linked")])
    with TestClient(base_url=LOCAL_URL, app=create_app(sources), raise_server_exceptions=False) as c:
        yield c


def test_run_listing_says_which_runs_have_strategies(client):
    runs = {r["id"]: r["has_strategies"] for r in client.get("/api/runs").json()["runs"]}
    assert runs == {"spray": True, "marked": True, "cnn": False, "linked": False}      # a link out of the run is refused


@pytest.mark.parametrize("run, artifact", [("spray", "artifact"), ("marked", "marked_artifact")])
def test_clusters_and_their_pictures_equal_the_artifact(client, spray, run, artifact):
    saved = json.loads(spray[artifact].read_text())
    answer = client.get("/api/strategies", params={"run": run})
    assert answer.status_code == 200
    data = answer.json()
    assert data["run"] == run and data["split"] == saved["split"] == "test"
    assert [c["class"] for c in data["classes"]] == sorted(int(k) for k in saved["classes"])
    for entry in data["classes"]:
        stored = saved["classes"][str(entry["class"])]
        assert entry["name"] == stored["name"]
        assert [(c["cluster"], c["size"], c["shortcut"]) for c in entry["clusters"]] == \
            [(s["cluster"], s["size"], s["shortcut"]) for s in stored["summaries"]]
        # every picture of the class appears once, under the cluster the artifact gives it
        pairs = sorted((i, c["cluster"]) for c in entry["clusters"] for i in c["indices"])
        assert pairs == sorted(zip(stored["indices"], stored["clusters"]))
        for cluster in entry["clusters"]:
            assert len(cluster["indices"]) == cluster["size"]
    # the indices name pictures the picture route serves
    first = data["classes"][0]["clusters"][0]["indices"][0]
    assert client.get(f"/api/runs/{run}/pictures/{data['split']}/{first}.png").status_code == 200
    assert data["classes"][0]["clusters"][-1]["shortcut"] or run != "marked"


@pytest.mark.parametrize("query, status, words", [
    ({"run": "nope"}, 404, "unknown run"),
    ({}, 404, "unknown run"),
    ({"run": "cnn"}, 404, "no strategies artifact"),
    ({"run": "linked"}, 404, "no strategies artifact"),
    ({"run": "spray", "path": "/etc/passwd"}, 400, "unknown parameter"),
])
def test_errors_are_one_line_json(client, query, status, words):
    answer = client.get("/api/strategies", params=query)
    assert answer.status_code == status
    body = answer.json()
    assert set(body) == {"error"} and words in body["error"] and "\n" not in body["error"]


STRATEGY_PAGE = 6        # clusters per page of the picker (common.js)


def test_clusters_page_through(client, spray):
    """``class``, ``offset``, ``limit`` and ``pictures`` page through the clusters: the pages put
    together are the whole listing."""
    full = client.get("/api/strategies", params={"run": "marked"}).json()
    flat = [(e["class"], c) for e in full["classes"] for c in e["clusters"]]
    assert full["total_clusters"] == len(flat) >= 3 and full["offset"] == 0 and full["limit"] is None
    for limit in (1, 2, len(flat) + 5):
        paged = []
        for offset in range(0, len(flat), limit):
            page = client.get("/api/strategies", params={"run": "marked", "offset": offset, "limit": limit,
                                                         "pictures": 3}).json()
            assert page["total_clusters"] == len(flat) and page["offset"] == offset and page["limit"] == limit
            paged += [(e["class"], c) for e in page["classes"] for c in e["clusters"]]
        assert len(paged) == len(flat)
        for (cls, got), (want_cls, want) in zip(paged, flat):
            assert cls == want_cls and got["indices"] == want["indices"][:3]
            assert {k: v for k, v in got.items() if k != "indices"} == {k: v for k, v in want.items() if k != "indices"}
    one = full["classes"][-1]
    only = client.get("/api/strategies", params={"run": "marked", "class": one["class"]}).json()
    assert [e["class"] for e in only["classes"]] == [one["class"]] and only["total_clusters"] == len(one["clusters"])
    saved = json.loads(spray["marked_artifact"].read_text())
    for entry in full["classes"]:
        for cluster in entry["clusters"]:
            stored = next(s for s in saved["classes"][str(entry["class"])]["summaries"] if s["cluster"] == cluster["cluster"])
            assert cluster["typical"] == stored["typical"] and set(cluster["typical"]) <= set(cluster["indices"])
    past = client.get("/api/strategies", params={"run": "marked", "offset": len(flat), "limit": 2}).json()
    assert past["classes"] == [] and past["total_clusters"] == len(flat)


@pytest.mark.parametrize("query", [{"offset": "-1"}, {"limit": "0"}, {"limit": "x"}, {"pictures": "-2"},
                                   {"class": "abc"}, {"offset": "9" * 400}])
def test_paging_parameters_are_checked(client, query):
    answer = client.get("/api/strategies", params={"run": "marked", **query})
    assert answer.status_code == 400 and list(answer.json()) == ["error"]


def test_a_changed_artifact_is_read_again(client, spray, tmp_path):
    path = spray["marked_artifact"]
    kept = path.read_text()
    try:
        data = json.loads(kept)
        data["classes"]["0"]["name"] = "renamed"
        path.write_text(json.dumps(data) + " ")                         # another size: another cache key
        assert client.get("/api/strategies", params={"run": "marked"}).json()["classes"][0]["name"] == "renamed"
    finally:
        path.write_text(kept)


def test_picker_groups_pictures_by_strategy_in_chromium(spray):
    """The Explain page's picker: "by strategy" only for the run with strategies; one page of
    clusters at a time (next / previous), shortcut clusters marked; a click explains that picture."""
    from test_serve_browser import _skip_reason

    if _skip_reason() is not None:
        pytest.skip(_skip_reason())
    from playwright.sync_api import sync_playwright

    from browser_tour import CHROMIUM, wait_for_new
    from netgaze.serve import BackgroundServer

    saved = json.loads(spray["marked_artifact"].read_text())
    clusters = [(c, s["cluster"], s["shortcut"]) for c, e in sorted((int(k), e) for k, e in saved["classes"].items())
                for s in e["summaries"]]
    assert any(shortcut for _, _, shortcut in clusters)
    errors: list[str] = []
    sources = Sources.from_arguments([str(spray[k]) for k in ("marked", "plain")])
    with BackgroundServer(sources) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.url + "/#/explain?run=cnn")
            wait_for_new(page, "#tiles", None)
            options = page.eval_on_selector_all("aside select option", "os => os.map(o => o.value)")
            assert "strategy" not in options                                  # the run has no strategies
            page.goto(server.url + "/#/explain?run=marked&order=strategy")
            page.wait_for_selector("#strategies .strategy img")
            read = ("gs => gs.map(g => [+g.dataset.class, +g.dataset.cluster, g.classList.contains('shortcut'), "
                    "g.querySelectorAll('img').length])")
            groups = page.eval_on_selector_all("#strategies .strategy", read)
            assert len(groups) == min(len(clusters), STRATEGY_PAGE)             # one page of clusters at a time
            while not page.is_disabled("#strategy-next"):                       # the next pages
                offset = page.get_attribute("#pictures", "data-offset")
                page.click("#strategy-next")
                page.wait_for_function("(o) => document.querySelector('#pictures').dataset.offset !== o", arg=offset)
                groups += page.eval_on_selector_all("#strategies .strategy", read)
            assert [tuple(g[:3]) for g in groups] == clusters
            assert page.text_content("#strategy-range").endswith(f"of {len(clusters)}")
            sizes = {(int(c), s["cluster"]): s["size"] for c, e in saved["classes"].items() for s in e["summaries"]}
            assert all(g[3] == min(sizes[(g[0], g[1])], 60) for g in groups)
            page.click("#strategy-previous")                                    # back to the first page
            page.wait_for_function("() => document.querySelector('#pictures').dataset.offset === '0'")
            before = wait_for_new(page, "#tiles", None)
            picture = page.locator("#strategies .strategy img").nth(1)
            index = picture.get_attribute("data-index")
            picture.click()
            wait_for_new(page, "#tiles", before)
            assert f"index={index}" in page.evaluate("() => location.hash")
            assert page.text_content("#tiles figure figcaption").startswith(f"test picture #{index}")
            assert page.locator("#strategies img.selected").get_attribute("data-index") == index
        finally:
            browser.close()
    assert errors == []
