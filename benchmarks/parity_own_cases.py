"""The peers' own test cases: Captum's helper models, inputs and expected numbers (its test files at
the commit in ``tests/methods/captum_cases.py``), answered by netgaze's methods.

Writes ``benchmarks/results/parity_own_cases.json``, one row per case, read by ``parity_table.py``.
pytorch-grad-cam's and torchcam's tests assert shapes and properties, not method numbers: no rows.

    python benchmarks/parity_own_cases.py
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT / "tests" / "methods")]
from _timing import print_table, write_results  # noqa: E402

import captum_cases  # noqa: E402


def rows() -> list[dict]:
    out = []
    for case in captum_cases.cases():
        ours, expected = case.ours_and_expected()
        diff, rel = float((ours - expected).abs().max()), captum_cases.max_rel_diff(ours, expected)
        row = {"method": case.method, "peer": "captum", "compared": f"the peer's own test case {case.test}",
               "max_abs_diff": diff, "max_rel_diff": rel, "equal": rel <= captum_cases.REL,
               "convention": case.convention}
        if case.delta is not None:
            row["peer_tolerance_abs"], row["within_peer_tolerance"] = case.delta, diff <= case.delta
        out.append(row)
    return out


def main() -> None:
    try:
        import captum  # noqa: F401
    except ImportError:
        raise SystemExit("the peers' own cases need Captum: pip install 'netgaze[bench]'") from None
    table = rows()
    print_table([[r["method"], r["compared"].rsplit("::", 1)[-1], f"{r['max_rel_diff']:.1e}",
                  "yes" if r["equal"] else f"within {r['peer_tolerance_abs']}" if r.get("within_peer_tolerance")
                  else "NO"] for r in table], ["method", "Captum test", "max rel diff", "equal"])
    path = write_results("parity_own_cases", {
        "model": f"Captum's helper models (captum.testing.helpers.basic_models), captum@{captum_cases.COMMIT[:7]}",
        "input": "each test case's own inputs", "tolerance_rel": captum_cases.REL, "rows": table,
        "skipped": captum_cases.SKIPPED})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
