"""bench/common.load_data: a bad --data is a user's mistake, answered in one line with exit 2."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from bench.common import load_data
from mars_segformer.argparsing import ArgumentParser
from tests import forked

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("make", ["missing", "wrong_layout"])
def test_a_bad_data_file_exits_2_with_one_line_naming_the_flag_and_file(tmp_path, capsys, make):
    path = tmp_path / "tiles.npz"
    if make == "wrong_layout":
        np.savez(path, images=np.zeros((2, 8, 8), np.uint8))  # no training_set key
    with pytest.raises(SystemExit) as exit_info:
        load_data(ArgumentParser(prog="bench_script"), str(path))
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--data" in lines[0] and str(path) in lines[0]


def test_a_bench_script_answers_a_missing_data_file_before_writing(tmp_path):
    missing = tmp_path / "nope.npz"
    stored = ROOT / "bench" / "results" / "exposure_spread.json"
    before = stored.read_bytes() if stored.exists() else None
    out = forked.run([sys.executable, str(ROOT / "bench" / "exposure_spread.py"), "--data", str(missing)],
                     capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().count("\n") == 0 and "Traceback" not in out.stderr and str(missing) in out.stderr
    assert (stored.read_bytes() if stored.exists() else None) == before
