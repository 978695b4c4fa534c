"""The conformance table: ``benchmarks/results/parity*.json`` -> ``docs/parity.md`` and the README's summary.

Run by ``make parity`` after ``parity.py``; ``python benchmarks/parity_table.py`` alone regenerates
the pages from the stored results. Everything between the markers is written here.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
from netgaze._util.atomic import atomic_write_text  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
PAGE, README = ROOT / "docs" / "parity.md", ROOT / "README.md"
BEGIN, END = "<!-- parity:start -->", "<!-- parity:end -->"


def load_rows() -> tuple[list[dict], list[str]]:
    rows, sources = [], []
    for path in sorted(RESULTS.glob("parity*.json")):
        data = json.loads(path.read_text())
        setting = f"{data.get('model', '?')}, input {data.get('input', '?')}"
        sources.append(f"`{path.name}`: {setting}")
        rows += [{**r, "setting": setting} for r in data.get("rows", [])]
    return rows, sources


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _equal(r: dict) -> str:
    if r["equal"]:
        return "yes"
    return f"within the peer's tolerance ({r['peer_tolerance_abs']:g})" if r.get("within_peer_tolerance") else "**no**"


def table(rows: list[dict]) -> str:
    lines = ["| method | peer | compared | largest relative difference | equal (1e-5) | convention that differs |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {_cell(r['method'])} | {_cell(r['peer'])} | - | - | skipped | {_cell(r['skipped'])} |")
            continue
        lines.append(f"| `{_cell(r['method'])}` | {_cell(r['peer'])} | {_cell(r.get('compared', ''))} "
                     f"| {r['max_rel_diff']:.1e} | {_equal(r)} "
                     f"| {_cell(r.get('convention', ''))} |")
    return "\n".join(lines)


OWN = "the peer's own test case"


def own_cases(rows: list[dict]) -> str:
    """The count of the peers' own test cases (``parity_own_cases.json``): equal, or within the peer's tolerance."""
    equal = sum(r["equal"] for r in rows)
    within = sum(not r["equal"] and r.get("within_peer_tolerance", False) for r in rows)
    peers = ", ".join(sorted({r["peer"] for r in rows}))
    text = f"{len(rows)} of the peers' own test cases ({peers}; expected numbers from their test files): {equal} equal"
    if within:
        text += f", {within} within the peer's own tolerance (its numbers come from random samples or are rounded)"
    return text


def summary(rows: list[dict]) -> str:
    own = [r for r in rows if str(r.get("compared", "")).startswith(OWN)]
    rows = [r for r in rows if r not in own]
    compared = [r for r in rows if "skipped" not in r]
    equal = [r for r in compared if r["equal"]]
    differ = sorted({r["method"] for r in compared if not r["equal"]})
    methods = sorted({r["method"].split(" ")[0] for r in compared})
    text = (f"{len(compared)} method-peer comparisons over {len(methods)} methods: {len(equal)} equal to 1e-5 "
            f"relative")
    if differ:
        n = len(compared) - len(equal)
        text += (f"; {n} {'differs' if n == 1 else 'differ'} by a named convention ({', '.join(differ)}: each also "
                 "compared under the peer's convention)")
    if own:
        text += "; " + own_cases(own)
    return text + ". Table: [docs/parity.md](docs/parity.md)."


def write(page: Path, block: str) -> None:
    text = page.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{page}: the markers {BEGIN} / {END} are missing")
    head, rest = text.split(BEGIN, 1)
    atomic_write_text(page, head + BEGIN + "\n" + block + "\n" + END + rest.split(END, 1)[1])
    print(f"wrote the parity table into {page}")


def main() -> None:
    rows, sources = load_rows()
    if not rows:
        raise SystemExit(f"no parity results in {RESULTS}: run python benchmarks/parity.py first")
    write(PAGE, summary(rows).replace("(docs/parity.md)", "(parity.md)") + "\n\nFrom " + "; ".join(sources)
          + ".\n\n" + table(rows))
    write(README, summary(rows))


if __name__ == "__main__":
    main()
