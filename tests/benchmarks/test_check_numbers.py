"""bench/check_numbers.py: which numbers of the docs no results file holds, and which their own line gives.

The expected derivations are worked by hand in the comments (the oracle), not by the script's arithmetic.
"""

import json

import pytest

from bench import check_numbers


def _numbers(line):
    return [(m.group(1), m.group(2)) for m in check_numbers.NUMBER.finditer(line)]


@pytest.mark.parametrize("line, which, expected", [
    # 0.3586 - 0.4133 = -0.0547; the written -0.0548 is inside the three numbers' rounding (3 x 0.00005)
    ("| 0 | 10% | 0.4133 | 0.3586 | -0.0548 |", 2, "0.3586 - 0.4133"),
    ("| 0 | 10% | 0.4133 | 0.3586 | \u22120.0548 |", 2, "0.3586 - 0.4133"),  # the typeset minus
    ("| 0.4642 | 0.4549 | +0.0093 |", 2, "0.4642 - 0.4549"),  # 0.4642 - 0.4549 = 0.0093
    # 0.3586 - 0.4133 = -0.0547, 53 units of the last place from -0.0600: no pair gives it
    ("| 0.4133 | 0.3586 | -0.0600 |", 2, None),
    # 0.35 - 0.36 = -0.01 is within 0.35's and 0.36's rounding of -0.0126, but two places say nothing of four
    ("| 0.6552 | -0.0126 | 0.35 / 0.36 |", 1, None),
    # (0.109 + 0.145) / 2 = 0.127
    ("big rock 0.109 / 0.145 (mean 0.127)", 2, "mean of 0.109 / 0.145"),
    ("big rock 0.109 / 0.145 (mean 0.130)", 2, None),  # 0.127 is 3 units of the last place away
    # (0.6663 + 0.6705) / 2 = 0.6684; 0.6597 before them is not part of the run that gives it
    ("0.6597 then 0.6663 / 0.6705, mean 0.6684", 3, "mean of 0.6663 / 0.6705"),
])
def test_derived_on_line(line, which, expected):
    assert check_numbers.derived_on_line(which, _numbers(line)) == expected


def test_unsourced_lists_values_differences_and_derived_apart(tmp_path, monkeypatch):
    (tmp_path / "bench" / "results").mkdir(parents=True)
    (tmp_path / "docs").mkdir()
    (tmp_path / "bench" / "results" / "r.json").write_text(json.dumps({"a": 0.41334, "b": [0.35861], "c": "x 0.7 y"}))
    (tmp_path / "README.md").write_text("held 0.4133 and 0.3586, so -0.0547; not held 0.5555\n")
    (tmp_path / "docs" / "page.md").write_text("line one\nagainst the other line: +0.0200\n")
    monkeypatch.setattr(check_numbers, "ROOT", tmp_path)
    rows, derived = check_numbers.unsourced()
    # 0.4133 and 0.3586 round from the file's numbers and are not listed; 0.5555 is in no file and no arithmetic
    assert [(r[0], r[1], r[2]) for r in rows] == [("README.md:1", "0.5555", "value"),
                                                 ("docs/page.md:2", "+0.0200", "difference")]
    assert [(d[0], d[1], d[2]) for d in derived] == [("README.md:1", "-0.0547", "0.3586 - 0.4133")]


@pytest.mark.parametrize("line, expected", [
    # 68.1 / 39.5 = 1.7241
    ("UperNet-R18 trains **1.72×** faster (68.1 against 39.5 images/s)", "68.1 / 39.5"),
    # 1.7241 is 8 units of the last place from 1.80, more than the operands' rounding moves it (~0.004)
    ("UperNet-R18 trains **1.80×** faster (68.1 against 39.5 images/s)", None),
])
def test_ratio_in_unsourced(tmp_path, monkeypatch, line, expected):
    (tmp_path / "bench" / "results").mkdir(parents=True)
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text(line + "\n")
    monkeypatch.setattr(check_numbers, "ROOT", tmp_path)
    rows, derived = check_numbers.unsourced()
    number = line.split("**")[1].rstrip("×")
    if expected is None:
        assert [(r[1], r[2]) for r in rows] == [(number, "value")] and derived == []
    else:
        assert rows == [] and [(d[1], d[2]) for d in derived] == [(number, expected)]


def test_numbers_only_in_ignored_run_folders_are_not_sources(tmp_path, monkeypatch):
    # a run folder's metrics.json exists on the machine that trained it, not in a clone: it must not source a number
    import subprocess

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("bench/results/runs/\n")
    (tmp_path / "bench" / "results" / "runs" / "a").mkdir(parents=True)
    (tmp_path / "bench" / "results" / "runs" / "a" / "metrics.json").write_text(json.dumps({"x": 0.5555}))
    (tmp_path / "bench" / "results" / "kept.json").write_text(json.dumps({"y": 0.4133}))  # new, not ignored
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("held 0.4133; only in an ignored run folder 0.5555\n")
    monkeypatch.setattr(check_numbers, "ROOT", tmp_path)
    assert check_numbers.results_files() == [tmp_path / "bench" / "results" / "kept.json"]
    rows, _ = check_numbers.unsourced()
    assert [(r[0], r[1]) for r in rows] == [("README.md:1", "0.5555")]
