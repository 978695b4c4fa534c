"""Headless Chromium for the report tests: render a page, report broken images and errors."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         "--disable-dev-shm-usage", "--hide-scrollbars"]

PROBE = """<script>
window.__errors = [];
window.addEventListener('error', function (e) {
  var t = e.target || {};
  window.__errors.push('error: ' + (e.message || t.src || t.href || 'resource failed'));
}, true);
document.addEventListener('securitypolicyviolation', function (e) {
  window.__errors.push('csp: ' + e.violatedDirective + ' ' + e.blockedURI);
});
var __origError = console.error;
console.error = function () { window.__errors.push('console: ' + Array.prototype.join.call(arguments, ' ')); };
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                     .map(function (i) { return i.alt || i.src.slice(0, 40); });
  var out = document.createElement('pre');
  out.id = '__probe';
  var wide = Array.prototype.slice.call(document.querySelectorAll('div.table, table'))
                    .filter(function (d) { return d.scrollWidth > d.clientWidth + 1; })
                    .map(function (d) { var c = d.querySelector('caption'); return c ? c.textContent : (d.id || d.tagName); });
  out.textContent = JSON.stringify({images: images.length, broken: broken, errors: window.__errors,
                                    title: document.title, scripts: document.scripts.length,
                                    width: window.innerWidth, scroll_width: document.documentElement.scrollWidth,
                                    tables_that_scroll: wide});
  document.body.appendChild(out);
});
</script>
"""


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    profile = tempfile.mkdtemp(prefix="netgaze-chromium-")
    try:
        return subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=timeout)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def probe(html_path: Path, timeout: float = 90, width: int = 1280) -> dict:
    """Load a copy of the page with a probe script first in <head> in a ``width``-pixel window; return its
    findings (images, errors, the page's scroll width and the tables that scroll sideways)."""
    text = Path(html_path).read_text()
    probed = Path(tempfile.mkdtemp(prefix="netgaze-probe-")) / "page.html"
    probed.write_text(text.replace("<head>", "<head>" + PROBE, 1))
    result = _run([f"--window-size={width},900", "--virtual-time-budget=10000", "--dump-dom", probed.as_uri()], timeout)
    match = re.search(r'<pre id="__probe">(.*?)</pre>', result.stdout, re.S)
    if not match:
        raise AssertionError(f"the page did not finish loading in Chromium; stderr: {result.stderr[-2000:]}")
    import html
    found = json.loads(html.unescape(match.group(1)))
    found["stderr"] = result.stderr
    return found


def screenshot(html_path: Path, png: Path, width: int = 1280, height: int = 4000, timeout: float = 90) -> Path:
    _run([f"--screenshot={png}", f"--window-size={width},{height}", Path(html_path).resolve().as_uri()], timeout)
    return png
