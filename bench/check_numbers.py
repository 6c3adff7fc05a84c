"""Numbers in README.md and docs/*.md that no file under bench/results/ holds: a reviewer's list.

    python bench/check_numbers.py

A decimal with 2-4 places counts as sourced when some number in some ``bench/results/**/*.json``
(values, and numbers inside strings) rounds to it at its own precision. Differences (``+0.044``),
ratios and timings from a named command are not in any file and are listed too, so read the list
as "check these by hand", not as errors. Prints the list and writes nothing; exits 0.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NUMBER = re.compile(r"(?<![\w.])([+\u2212-]?)(\d+\.\d{2,4})(?![\w.])")


def result_values() -> dict[int, set[float]]:
    """Every number in the results files, rounded to 1-4 places."""
    values: set[float] = set()

    def walk(o):
        if isinstance(o, bool):
            return
        if isinstance(o, (int, float)):
            values.add(float(o))
        elif isinstance(o, str):
            values.update(float(m) for m in re.findall(r"-?\d+\.\d+", o))
        elif isinstance(o, dict):
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    for path in (ROOT / "bench" / "results").rglob("*.json"):
        try:
            walk(json.loads(path.read_text()))
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
    return {d: {round(v, d) for v in values} for d in range(1, 5)}


def unsourced() -> list[tuple[str, int, str, str]]:
    rounded = result_values()
    rows = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for i, line in enumerate(doc.read_text().splitlines(), 1):
            for m in NUMBER.finditer(line):
                text = m.group(2)
                if round(float(text), len(text.split(".")[1])) not in rounded[len(text.split(".")[1])]:
                    kind = "difference" if m.group(1) else "value"
                    rows.append((f"{doc.relative_to(ROOT)}:{i}", m.group(1) + text, kind, line.strip()[:120]))
    return rows


def main():
    rows = unsourced()
    for where, number, kind, line in rows:
        print(f"{where:28} {number:>8} {kind:10} {line}")
    print(f"{len(rows)} number(s) not found in bench/results/ "
          f"({sum(r[2] == 'value' for r in rows)} values, {sum(r[2] == 'difference' for r in rows)} signed differences)")


if __name__ == "__main__":
    main()
