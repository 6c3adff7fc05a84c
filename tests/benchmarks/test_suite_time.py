"""bench/suite_time.py reads pytest's --durations lines and its summary line."""

from bench.suite_time import parse


def test_durations_are_summed_per_file_and_the_summary_is_read():
    rows = [(12.5, "call", "tests/a.py::t1"), (3.25, "setup", "tests/a.py::t2@g"), (7.0, "call", "tests/b/c.py::t[x-1]")]
    log = "\n".join(["....  [100%]", "==== slowest durations ===="] + [f"{s}s {p}     {n}" for s, p, n in rows]
                    + ["==== 3 passed, 1 skipped, 2 warnings in 61.50s (0:01:01) ===="])
    got = parse(log)
    assert got["wall_s"] == 61.5 and got["summary"] == "3 passed, 1 skipped, 2 warnings"
    assert got["work_per_file_s"] == {"tests/a.py": round(rows[0][0] + rows[1][0], 1), "tests/b/c.py": rows[2][0]}
    assert got["listed_work_s"] == round(sum(r[0] for r in rows), 1) and got["listed"] == len(rows)
    assert [t["test"] for t in got["slowest"]] == ["tests/a.py::t1", "tests/b/c.py::t[x-1]", "tests/a.py::t2@g"]
