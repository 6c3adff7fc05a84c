"""Every bench script's results name is a file name: a path in it is refused with exit 2 before any work.

The scripts are found by reading their source for the flag (not by the helper they use), so a new script whose
``--name`` takes any string fails here.
"""

import importlib
import re
import sys
from pathlib import Path

import pytest

from bench.common import RESULTS, save

BENCH = Path(__file__).resolve().parents[2] / "bench"
#: scripts whose ``--out`` is a results name (bench/results/NAME.json), not a folder or a file path
OUT_IS_A_NAME = ("class_ids", "cpu_speed", "setup_commands", "step_syncs", "suite_time")


def _flags():
    for script in sorted(BENCH.glob("*.py")):
        source = script.read_text()
        if re.search(r'add_argument\("--name"', source):
            yield script.stem, "--name"
        if script.stem in OUT_IS_A_NAME:
            assert re.search(r'add_argument\("--out"', source), f"{script.name} has no --out any more"
            yield script.stem, "--out"


FLAGS = list(_flags())


def test_every_results_name_flag_is_found():
    assert len(FLAGS) >= 20  # 15 scripts with --name and 5 with a results-name --out when this test was written


@pytest.mark.parametrize("bad", ["../escaped", "sub/escaped", ".hidden"])
@pytest.mark.parametrize("script,flag", FLAGS)
def test_a_path_as_results_name_exits_2_with_one_line(script, flag, bad, monkeypatch, capsys):
    module = importlib.import_module(f"bench.{script}")
    monkeypatch.setattr(sys, "argv", [f"{script}.py", flag, bad])
    with pytest.raises(SystemExit) as e:
        module.main()
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and flag in err[0] and "without a folder" in err[0] and repr(bad) in err[0]
    assert not (RESULTS / f"{bad}.json").exists() and not (RESULTS.parent / "escaped.json").exists()


def test_save_refuses_a_path(tmp_path, monkeypatch):
    monkeypatch.setattr("bench.common.RESULTS", tmp_path / "results")
    with pytest.raises(ValueError, match="without a folder"):
        save("../escaped", {"a": 1})
    assert not (tmp_path / "escaped.json").exists()
    assert save("fine", {"a": 1}) == tmp_path / "results" / "fine.json"
