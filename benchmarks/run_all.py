"""Run every benchmark script in this folder, one after another (`make bench`).

Each benchmark is a module with its own `python -m benchmarks.<name>` entry point, bounds its
own time and prints its figures; this runner only sequences them, so that two benchmarks never
compete for the machine's two cores.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SKIP = {"run_all", "__init__"}


def main(argv: list[str]) -> int:
    names = argv or sorted(
        p.stem for p in HERE.glob("*.py")
        if p.stem not in SKIP and not p.stem.endswith("_common") and "__main__" in p.read_text()
    )
    failed = []
    for name in names:
        print(f"\n=== benchmarks.{name} ===", flush=True)
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", f"benchmarks.{name}"], cwd=HERE.parent)
        print(f"=== benchmarks.{name}: exit {result.returncode} in {time.monotonic() - started:.0f}s ===", flush=True)
        if result.returncode:
            failed.append(name)
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
