"""Run many ``netgaze`` command lines in one Python process (one torch import), one fresh folder each.

    python bad_input_runner.py CASES.json RESULTS.json

CASES.json is a list of argument lists. Each case runs ``netgaze.cli.main(argv)`` with its
own empty working folder, and file descriptor 2 redirected to a file, so everything written
to stderr (Python or C) is caught. RESULTS.json gets one ``{"code", "stderr", "written"}``
per case; an exception escaping ``main`` is recorded as code "traceback" with its text.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback


def run_case(argv: list[str], main) -> dict:
    cwd = tempfile.mkdtemp(prefix="case-")
    os.chdir(cwd)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            code = main(argv)
        except BaseException:  # noqa: BLE001 - a traceback is exactly what the test looks for
            sys.stderr.write(traceback.format_exc())
            code = "traceback"
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        stderr = capture.read().decode("utf-8", "replace")
    written = sorted(os.listdir(cwd))
    return {"code": code, "stderr": stderr, "written": written}


def main_() -> None:
    os.environ.setdefault("MPLBACKEND", "Agg")
    import torch

    torch.set_num_threads(1)
    from netgaze.cli import main

    cases = json.loads(open(sys.argv[1]).read())
    results = [run_case(argv, main) for argv in cases]
    with open(sys.argv[2], "w") as handle:
        json.dump(results, handle)


if __name__ == "__main__":
    main_()
