"""Numbers in README.md and docs/*.md that no file under bench/results/ holds: a reviewer's list.

    python bench/check_numbers.py

A decimal with 2-4 places counts as sourced when some number in some ``bench/results/**/*.json`` that a clone
has (tracked or new, not the ignored run folders; values, and numbers inside strings) rounds to it at its own
precision. A number that no file holds but that its own line's arithmetic gives is listed apart, as derived: a
signed difference of two numbers on the line (``0.4133 | 0.3586 | -0.0548``) or a mean of two to six numbers next
to each other there (``0.109 / 0.145 (mean 0.127)``), each to within the rounding of the numbers involved and
from numbers written at least as precisely as it is; or, for a number written before ``×``, the ratio of
two decimals of the line (``1.72× faster (68.1 against 39.5 images/s)``).
Differences and means of numbers on other lines, ratios and timings from a named command are in no
file and are listed too, so read the list as "check these by hand", not as errors. Prints the lists
and writes nothing; exits 0.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NUMBER = re.compile(r"(?<![\w.])([+\u2212-]?)(\d+\.\d{2,4})(?![\w.])")
#: the most numbers next to each other on a line whose mean a derived number may be
MAX_MEAN_OF = 6


def results_files() -> list[Path]:
    """The JSON files under ``bench/results/`` that a clone has: in a git work tree the tracked ones and new ones not
    ignored, never the ignored run folders (their ``metrics.json`` files exist on one machine only); else all."""
    results = ROOT / "bench" / "results"
    if not (ROOT / ".git").exists():  # not a clone's root (an unpacked copy, a test's folder): every file
        return sorted(results.rglob("*.json"))
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard",
                              "--", "bench/results"], capture_output=True, text=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return sorted(results.rglob("*.json"))
    return sorted(ROOT / name for name in out.split("\0") if name.endswith(".json") and (ROOT / name).is_file())


def result_values() -> dict[int, set[float]]:
    """Every number in the results files, rounded to 1-4 places."""
    values: set[float] = set()

    def walk(o):
        if isinstance(o, bool):
            return
        if isinstance(o, (int, float)):  # docs write a number's sign apart from its digits, which are looked up
            values.add(abs(float(o)))
        elif isinstance(o, str):
            values.update(float(m) for m in re.findall(r"\d+\.\d+", o))
        elif isinstance(o, dict):
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    for path in results_files():
        try:
            walk(json.loads(path.read_text()))
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
    return {d: {round(v, d) for v in values} for d in range(1, 5)}


def _places(text: str) -> int:
    """Decimal places of a number as written."""
    return len(text.split(".")[1])


def _half_ulp(text: str) -> float:
    """Half a unit in the last place of a decimal as written: how far rounding may have moved it."""
    return 0.5 * 10 ** -_places(text)


def derived_on_line(index: int, numbers: list[tuple[str, str]]) -> str | None:
    """How the line's own numbers give ``numbers[index]``, or None.

    Args:
        index: which of ``numbers`` to explain.
        numbers: the line's numbers in order, each as (sign, digits) as written (sign ``""``, ``+``, ``-`` or ``−``).

    Returns:
        ``"b - a"`` or ``"mean of ..."`` naming the numbers as written, or None when neither fits within the
        rounding of the numbers involved.
    """
    sign, text = numbers[index]
    target = (-1 if sign in ("-", "\u2212") else 1) * float(text)
    # the unsigned numbers of the line but this one, in order, as precise as it at least (0.35 - 0.36 says nothing
    # of -0.0126): the operands of a difference, and the runs of neighbours a mean is taken over
    others = [(float(t), _half_ulp(t), t) for i, (s, t) in enumerate(numbers)
              if i != index and not s and _places(t) >= _places(text)]
    if sign:  # a signed difference: b - a for two unsigned numbers of the line
        for a, ea, ta in others:
            for b, eb, tb in others:
                if a != b and abs((b - a) - target) <= ea + eb + _half_ulp(text) + 1e-12:
                    return f"{tb} - {ta}"
        return None
    for n in range(2, MAX_MEAN_OF + 1):
        for start in range(len(others) - n + 1):
            run = others[start:start + n]
            mean, err = sum(p[0] for p in run) / n, sum(p[1] for p in run) / n
            if abs(mean - target) <= err + _half_ulp(text) + 1e-12:
                return "mean of " + " / ".join(p[2] for p in run)
    return None


#: a ratio's operands: any decimal of the line (one place and up, as speeds are written)
OPERAND = re.compile(r"(?<![\w.])(\d+\.\d+)(?![\w.])")


def ratio_on_line(text: str, line: str) -> str | None:
    """``"a / b"`` when two decimals of ``line`` divide to ``text`` (a number written before ``×``) within their
    rounding, or None."""
    target = float(text)
    operands = [(float(t), _half_ulp(t), t) for t in OPERAND.findall(line) if t != text]
    for a, ea, ta in operands:
        for b, eb, tb in operands:
            if b > 0 and a != b and abs(a / b - target) <= _half_ulp(text) + ea / b + a * eb / b ** 2 + 1e-12:
                return f"{ta} / {tb}"
    return None


def unsourced() -> tuple[list[tuple[str, str, str, str]], list[tuple[str, str, str, str]]]:
    """(unsourced, derived): rows of (file:line, the number as written, its kind or derivation, the line)."""
    rounded = result_values()
    rows, derived = [], []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for i, line in enumerate(doc.read_text().splitlines(), 1):
            numbers = [(m.group(1), m.group(2)) for m in NUMBER.finditer(line)]
            for k, (sign, text) in enumerate(numbers):
                if round(float(text), _places(text)) in rounded[_places(text)]:
                    continue
                where, how = f"{doc.relative_to(ROOT)}:{i}", derived_on_line(k, numbers)
                if how is None and not sign and re.search(rf"(?<![\w.]){re.escape(text)}\**\s?[×x]", line):
                    how = ratio_on_line(text, line)
                if how:
                    derived.append((where, sign + text, how, line.strip()[:120]))
                else:
                    rows.append((where, sign + text, "difference" if sign else "value", line.strip()[:120]))
    return rows, derived


def main():
    rows, derived = unsourced()
    for where, number, kind, line in rows:
        print(f"{where:28} {number:>8} {kind:10} {line}")
    print(f"{len(rows)} number(s) not found in bench/results/ "
          f"({sum(r[2] == 'value' for r in rows)} values, {sum(r[2] == 'difference' for r in rows)} signed differences)")
    print(f"{len(derived)} more that their own line's numbers give (their operands are checked like any number):")
    for where, number, how, _ in derived:
        print(f"  {where:28} {number:>8} = {how}")


if __name__ == "__main__":
    main()
