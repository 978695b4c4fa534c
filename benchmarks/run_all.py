"""`make bench`: every side-by-side speed benchmark (bench_*.py), one after another.

Each script prints its table and writes benchmarks/results/<name>.json. Quality runs
(quality_*.py: accuracy, IoU, pointing game after training) are separate: `make quality`.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent


def main(prefix: str = "bench_") -> int:
    scripts = sorted(HERE.glob(f"{prefix}*.py"))
    only = set(sys.argv[1:])
    failed = []
    for script in scripts:
        if only and script.stem not in only:
            continue
        print(f"\n=== {script.name} ===", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, str(script)])
        print(f"=== {script.name}: exit {code} in {time.perf_counter() - start:.0f} s ===", flush=True)
        if code:
            failed.append(script.name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main("quality_" if "--quality" in sys.argv[1:2] and sys.argv.pop(1) else "bench_"))
