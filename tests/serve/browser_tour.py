"""Drive the explorer in headless Chromium through every page; optionally write screenshots.

Used by ``test_serve_browser.py`` and by ``make screenshots``::

    python tests/serve/browser_tour.py --out screenshots/ [RUN ...]   # no runs: tiny ones in a temp folder
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 30_000


def wait_for_new(page, selector: str, before: str | None) -> str:
    """Wait until ``selector``'s data-stamp changes from ``before`` (a new answer arrived); return it."""
    page.wait_for_function(
        "([sel, old]) => { const n = document.querySelector(sel); return n && n.dataset.stamp && n.dataset.stamp !== old; }",
        arg=[selector, before or ""], timeout=TIMEOUT_MS)
    return page.eval_on_selector(selector, "n => n.dataset.stamp")


def _png_bytes() -> bytes:
    import io

    from PIL import Image, ImageDraw
    image = Image.new("RGB", (64, 48), (20, 60, 20))
    ImageDraw.Draw(image).ellipse((16, 8, 48, 40), fill=(240, 200, 40))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def stamp(page, selector: str) -> str | None:
    return page.eval_on_selector(selector, "n => n.dataset.stamp || null") if page.query_selector(selector) else None


def tour(url: str, shots: Path | None = None, runs: dict[str, str] | None = None) -> dict:
    """Visit every page and do what a user does there; return what happened (errors, stamps, checks)."""
    from playwright.sync_api import sync_playwright

    runs = runs or {}
    report: dict = {"console": [], "page_errors": [], "failed": [], "steps": [], "http_errors": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            page.on("console", lambda m: report["console"].append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: report["page_errors"].append(str(e)))
            page.on("requestfailed", lambda r: report["failed"].append(r.url))
            page.on("response", lambda r: report["http_errors"].append(f"{r.status} {r.url}") if r.status >= 400 else None)

            def shot(name: str) -> None:
                if shots is not None:
                    shots.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

            # Explain: the first answer, then pick another picture, then change the layer.
            cnn = runs.get("classify")
            page.goto(url + "/#/explain" + (f"?run={cnn}" if cnn else ""))
            first = wait_for_new(page, "#tiles", None)
            page.wait_for_selector("#pictures img")
            page.locator("#pictures img").nth(2).click()
            second = wait_for_new(page, "#tiles", first)
            report["steps"].append(("explain: picked a picture", first, second))
            boxes = page.locator("#layers input")
            boxes.nth(0).check()
            third = wait_for_new(page, "#tiles", second)
            report["explain_tiles"] = page.locator("#tiles figure").count()
            report["steps"].append(("explain: added a layer", second, third))
            report["options"] = page.eval_on_selector_all("aside select option", "os => os.map(o => o.textContent)")
            pixels = "c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data.slice(0, 4000))"
            before = page.eval_on_selector("#tiles canvas.map", pixels)
            page.locator("#opacity").fill("100")          # drawn again in the page: no request
            report["opacity"] = (before != page.eval_on_selector("#tiles canvas.map", pixels),
                                 stamp(page, "#tiles") == third)
            page.locator("#opacity").fill("50")
            shot("explain")
            page.set_input_files("#upload", files=[{"name": "upload.png", "mimeType": "image/png",
                                                    "buffer": _png_bytes()}])
            fourth = wait_for_new(page, "#tiles", third)
            report["steps"].append(("explain: uploaded a picture", third, fourth))
            report["upload_caption"] = page.text_content("#tiles figure figcaption")

            # Explain: click a point of a map -> the concepts that contribute there; then the Concepts page.
            concepts_tour(page, url, runs.get("concepts") or cnn, report, shot)

            # Area: drag a box on the reconstruction / segmentation.
            dense = runs.get("dense")
            page.goto(url + "/#/area" + (f"?run={dense}" if dense else ""))
            first = wait_for_new(page, "#tiles", None)
            area_caption = page.text_content("#area-cam figcaption")
            output = page.locator("#output").bounding_box()
            page.mouse.move(output["x"] + 20, output["y"] + 20)
            page.mouse.down()
            page.mouse.move(output["x"] + 90, output["y"] + 110, steps=5)
            page.mouse.up()
            second = wait_for_new(page, "#tiles", first)
            report["area_captions"] = (area_caption, page.text_content("#area-cam figcaption"))
            report["steps"].append(("area: dragged a box", first, second))
            shot("area")

            # Epochs: move the slider.
            page.goto(url + "/#/epochs" + (f"?run={cnn}" if cnn else ""))
            first = wait_for_new(page, "#tiles", None)
            page.wait_for_selector("#curves polyline")
            slider = page.locator("#epoch")
            slider.fill("0")          # fires input and change
            second = wait_for_new(page, "#tiles", first)
            report["epoch_caption"] = page.text_content("#epoch-map figcaption")
            report["steps"].append(("epochs: moved the slider", first, second))
            page.wait_for_selector("#curves polyline")
            shot("epochs")

            # Embedding: hover then click a point -> the Explain page of that picture.
            page.goto(url + "/#/embedding" + (f"?run={cnn}" if cnn else ""))
            wait_for_new(page, "#scatter", None)
            last = page.evaluate("() => state.scatter.n - 1")      # drawn last, so on top of every other point
            index = page.evaluate("(i) => String(state.scatter.data.columns.index[i])", last)
            x, y = (round(v) for v in page.evaluate("(i) => state.scatter.toClient(i)", last))
            page.mouse.move(x, y)
            page.wait_for_function("(want) => { const t = document.getElementById('tooltip'); "
                                   "return !t.hidden && t.dataset.index === want; }", arg=index, timeout=TIMEOUT_MS)
            shot("embedding")
            page.mouse.click(x, y)
            page.wait_for_function("() => document.body.dataset.page === 'explain'")
            clicked = wait_for_new(page, "#tiles", None)
            report["embedding_click"] = (index, page.evaluate("() => location.hash"))
            report["steps"].append(("embedding: clicked a point", None, clicked))

            # Units.
            page.goto(url + "/#/units" + (f"?run={cnn}" if cnn else ""))
            wait_for_new(page, "#units", None)
            report["unit_rows"] = page.locator("#units tr").count()
            shot("units")
            escape = runs.get("escape")
            if escape:   # a run whose class names are HTML: shown as text, never run
                page.goto(url + f"/#/explain?run={escape}")
                wait_for_new(page, "#tiles", None)
                report["escape_options"] = page.eval_on_selector_all("aside select option",
                                                                     "os => os.map(o => o.textContent)")
                report["escape_prediction"] = page.text_content("#prediction")
            report["xss"] = page.evaluate("() => window.__xss || null")
        finally:
            browser.close()
    return report


def settled(page) -> None:
    """Wait until no panel says it is computing (at most ``TIMEOUT_MS``: a panel busy longer fails)."""
    page.wait_for_function("() => !document.querySelector('[data-busy]')", timeout=TIMEOUT_MS)


def concepts_tour(page, url: str, run: str | None, report: dict, shot) -> None:
    """Click a point of the Explain page's first map, read the concepts list; open the Concepts page."""
    page.goto(url + "/#/explain?" + (f"run={run}&" if run else "") + "index=2&guided=0")
    wait_for_new(page, "#tiles", None)
    canvas = page.locator("#tiles canvas.map").first
    size = canvas.bounding_box()
    page.mouse.click(size["x"] + 0.5 * size["width"], size["y"] + 0.4 * size["height"])
    wait_for_new(page, "#concept-list", None)
    settled(page)
    report["concept_rows"] = page.eval_on_selector_all(
        "#concept-list tr[data-channel]", "rows => rows.map(r => Number(r.dataset.channel))")
    report["concept_values"] = page.eval_on_selector_all(
        "#concept-list tr[data-channel] td:nth-child(2) div", "ds => ds.map(d => d.textContent)")
    report["concept_crops"] = page.locator("#concept-list canvas.crop").count()
    report["concept_title"] = page.text_content("#concepts .concepts-title")
    shot("explain-concepts")
    page.goto(url + "/#/concepts" + (f"?run={run}" if run else ""))
    wait_for_new(page, "#atlas", None)
    page.wait_for_function("() => document.getElementById('atlas').dataset.am === '1'", timeout=TIMEOUT_MS)
    settled(page)
    report["atlas_rows"] = page.locator("#atlas tr[data-channel]").count()
    report["atlas_title"] = page.text_content("#atlas-title")
    report["atlas_images"] = page.locator("#atlas td.am img").count()
    shot("concepts")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", help="run folders to serve (default: tiny runs trained now)")
    parser.add_argument("--out", default="screenshots", help="folder for the PNGs (default ./screenshots)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).parent))
    from netgaze.serve import BackgroundServer, Settings, Sources

    paths = args.runs
    if not paths:
        from serve_fixtures import make_runs
        made = make_runs(Path(tempfile.mkdtemp(prefix="netgaze-screens-")))
        from serve_fixtures import with_concepts
        paths = [str(made[k]) for k in ("cnn", "vae", "fcn")] + [str(with_concepts(made["cnn"].parent, made["cnn"]))]
    sources = Sources.from_arguments(paths)
    pick = {"classify": next((s.id for s in sources if s.task == "classify" and len(s.epochs) > 1), None),
            "dense": next((s.id for s in sources if s.task != "classify"), None),
            "concepts": next((s.id for s in sources if s.concepts_artifact() is not None), None)}
    with BackgroundServer(sources, Settings(processes=True)) as server:
        report = tour(server.url, Path(args.out), pick)
    print(f"screenshots in {args.out}: " + ", ".join(sorted(p.name for p in Path(args.out).glob('*.png'))))
    problems = report["console"] + report["page_errors"]
    if problems:
        print("browser errors:", *problems, sep="\n  ")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
