"""Where the test suite's time goes: every test's duration, summed by file, from one `pytest -n auto` run.

    python bench/suite_time.py                    # runs the README's test command with --durations=0
    python bench/suite_time.py --log pytest.log   # or reads a log of such a run

The suite's wall time on N workers is about the summed work / N when the workers are balanced (the
JSON gives both), so the way to a shorter suite is less work, not more balance. Saves
``bench/results/suite_time.json``: wall time, outcome line, work per file and the slowest tests.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import RESULTS, machine, result_name, save  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402

DURATION = re.compile(r"^([0-9.]+)s (call|setup|teardown)\s+(\S+)")
SUMMARY = re.compile(r"^=*\s*((?:\d+ \w+, )*\d+ passed.*) in ([0-9.]+)s")


def parse(log: str) -> dict:
    """A pytest log with ``--durations`` -> wall time, summary, work per file and the slowest tests."""
    tests, summary, wall = [], None, None
    for line in log.splitlines():
        if m := DURATION.match(line):
            tests.append((float(m[1]), m[2], m[3]))
        elif (m := SUMMARY.match(line.strip())) or (m := SUMMARY.match(line.strip("= "))):
            summary, wall = m[1], float(m[2])
    per_file = defaultdict(float)
    for seconds, _, node in tests:
        per_file[node.split("::")[0]] += seconds
    work = sum(s for s, _, _ in tests)
    return {"wall_s": wall, "summary": summary, "listed_work_s": round(work, 1), "listed": len(tests),
            "work_per_file_s": {f: round(s, 1) for f, s in sorted(per_file.items(), key=lambda kv: -kv[1])},
            "slowest": [{"seconds": s, "phase": p, "test": n} for s, p, n in sorted(tests, reverse=True)[:25]]}


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--log", help="read this pytest log (run with --durations) instead of running the suite")
    p.add_argument("--out", type=result_name, default="suite_time")
    args = p.parse_args()
    if args.log:
        log = Path(args.log).read_text()
    else:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "auto", "--durations=0",
                               "-p", "no:cacheprovider"], cwd=ROOT, capture_output=True, text=True)
        log = proc.stdout + proc.stderr
        (RESULTS / f"{args.out}.log").write_text(log)  # kept beside the JSON: failures and warnings are read there
    result = parse(log)
    if result["wall_s"] is None:
        raise SystemExit("no pytest summary line with a time found in the log")
    save(args.out, {"machine": machine(), "command": "python -m pytest -q -n auto --durations", **result})


if __name__ == "__main__":
    main()
