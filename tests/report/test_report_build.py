"""The HTML report: sections from manifests, captions, tables, findings, escaping, self-contained."""
from __future__ import annotations

import hashlib
import re

import pytest

from netgaze.cli import main
from netgaze.report import build_report, find_runs
from report_fixtures import EVIL, write_classify_run, write_reconstruct_run


@pytest.fixture
def runs(tmp_path):
    return [write_classify_run(tmp_path / "runs"), write_reconstruct_run(tmp_path / "runs")]


def _digest(folder):
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_report_sections_numbers_and_captions(runs, tmp_path):
    html = build_report(runs, tmp_path / "report.html").read_text()
    for heading in ("Overview", "Findings", "Classification", "Training models", "Grad-CAM for different models",
                    "Reconstruction", "Latent space of the VAE", "Other figures"):
        assert f">{heading}<" in html, heading
    assert "<td>0.750</td>" in html  # numbers from the manifest's table, three decimals
    # the overview row of the classifier (one table per task): train 0.8 and test accuracy 0.7 of epoch 3
    assert re.search(r"<td>cnn</td><td>simple-cnn</td><td>shapes</td><td>3</td><td>0.800</td>"
                     r"<td>0.700</td>", html)
    assert ">Classification runs (final epoch)<" in html and ">Reconstruction runs (final epoch)<" in html
    # findings with numbers: models differ, augmentation, background clustering
    assert "plain 0.25, robust 0.75" in html
    assert "a change of +0.50, so augmentation moves attention onto the object" in html
    assert "class 0.41, background 0.93." in html and "by background colour more than by class" in html
    # each finding links to the figure that shows it, by the figure's id and number
    number = re.search(r'<figure id="fig-cnn-models">\s*<img [^>]*>\s*<figcaption>Figure (\d+)\.', html).group(1)
    assert html.count(f'<a href="#fig-cnn-models">Figure {number}</a>') == 2  # models differ; augmentation
    # a skipped section is shown, not silently dropped
    assert "not run — netgaze.featureviz has not landed" in html
    # captions: the study's own, and one composed from the manifest's facts
    assert "Latent space of the VAE (traversal.png): run vae, model vae-linear, dataset digits, epoch 2." in html
    assert "extra/loose.png from run cnn (simple-cnn on shapes)." in html
    # an unreadable history line is reported, not fatal
    assert "history.jsonl line 3 is not JSON" in html
    assert len(re.findall(r"<figure ", html)) == len(re.findall(r"<img ", html)) == 5


def test_user_text_is_escaped(runs, tmp_path):
    html = build_report(runs, tmp_path / "report.html").read_text()
    assert EVIL not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "<script" not in html.lower()  # the report has no script at all


def test_self_contained_and_read_only(runs, tmp_path):
    before = [_digest(r) for r in runs]
    html = build_report(runs, tmp_path / "out" / "report.html").read_text()
    assert [_digest(r) for r in runs] == before  # the report only reads run folders
    sources = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert sources and all(s.startswith("data:image/") or s.startswith("#") for s in sources)
    assert "http://" not in html and "https://" not in html
    assert "<style>" in html and "stylesheet" not in html


def test_a_folder_of_runs_and_cli(runs, tmp_path, capsys):
    assert [p.name for p in find_runs([runs[0].parent])] == ["cnn", "vae"]
    assert main(["report", str(runs[0].parent)]) == 0
    assert (runs[0].parent / "report.html").is_file()
    assert main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such run folder" in err


def test_the_page_states_its_content_security_policy_and_keeps_it(runs, tmp_path):
    """README: the report carries a Content-Security-Policy (no script, nothing fetched), and the
    page itself needs nothing the policy forbids."""
    html = build_report(runs, tmp_path / "report.html").read_text()
    head = html[:html.lower().index("</head>")]
    metas = re.findall(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', head)
    assert len(metas) == 1, "the report's <head> has no (or several) Content-Security-Policy meta tags"
    policy = {d.split()[0]: d.split()[1:] for d in (p.strip() for p in metas[0].split(";")) if d}
    assert policy["default-src"] == ["'none'"]          # fetch, frames, fonts, forms ...: nothing at all
    assert policy["script-src"] == ["'none'"]
    assert policy["img-src"] == ["data:"]               # the pictures are inline
    assert set(policy) <= {"default-src", "script-src", "img-src", "style-src"}, policy   # nothing widened
    # what the page holds obeys it: no script, no handler, nothing loaded from anywhere
    lower = html.lower()
    assert "<script" not in lower and "javascript:" not in lower
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", lower), "an inline event handler"
    for tag in ("<link", "<iframe", "<object", "<embed", "<form", "<base", "@import", 'http-equiv="refresh"'):
        assert tag not in lower, tag
    assert all(u.startswith(("data:", "#")) for u in re.findall(r'(?:src|href|action|poster)="([^"]*)"', html))
    assert all(u.strip("'\" ").startswith("data:") for u in re.findall(r"url\(([^)]*)\)", html))
