"""bench/run_noise.py: runs grouped by family and split, and the paired t-test checked by hand."""

import json
import math
import sys

import pytest

from bench import run_noise as rn
from tests import forked


def _row(task, finished=True):
    return {"finished": finished, "best": {"task_mean_iou": task, "big_rock": task / 2, "soil": 0.9}}


ROWS = {
    "m__r_s0": _row(0.60), "m__r_s1": _row(0.62), "m__r_ds2_s1": _row(0.64), "m__r_s2": _row(0.70),
    "m__r_s7": _row(0.50),  # a split the candidate never ran
    "m__r_ds9_s0": _row(0.10, finished=False),  # still training: left out
    "m__r_kd1_s0": _row(0.99),  # a distilled run is another family
    "m__r_x_s0": _row(0.61), "m__r_x_s1": _row(0.65), "m__r_x_s2": _row(0.73),
}


def test_a_family_is_its_finished_runs_and_reruns_by_split():
    runs = rn.family_runs(ROWS, "m__r")
    assert {s: [r["task_mean_iou"] for r in v] for s, v in runs.items()} == {0: [0.60], 1: [0.62, 0.64], 2: [0.70],
                                                                             7: [0.50]}
    assert list(rn.family_runs(ROWS, "m__r_x")) == [0, 1, 2]
    assert rn.family_runs(ROWS, "m__") == {}


def test_the_paired_test_against_the_t_distribution_with_two_degrees_of_freedom():
    c = rn.compare(ROWS, "m__r", "m__r_x")
    d = c["task_mean_iou"]["paired"]
    # split means 0.60 / 0.63 / 0.70 against 0.61 / 0.65 / 0.73: differences 0.01, 0.02, 0.03
    assert d["splits"] == [0, 1, 2]
    assert d["differences"] == pytest.approx([0.01, 0.02, 0.03])
    assert d["mean_difference"] == pytest.approx(0.02)
    assert d["sd_of_differences"] == pytest.approx(0.01)
    t = 0.02 / (0.01 / math.sqrt(3))
    assert d["t"] == pytest.approx(t)
    # Student's t with 2 degrees of freedom: P(|T| > t) = 1 - t / sqrt(2 + t^2)
    assert d["p_two_sided"] == pytest.approx(1 - t / math.sqrt(2 + t * t))
    assert c["big_rock"]["paired"]["mean_difference"] == pytest.approx(0.01)
    # within-split spread: the baseline's two runs on split 1 only (0.62, 0.64)
    assert rn.pooled_sd(rn.family_runs(ROWS, "m__r"), "task_mean_iou") == pytest.approx(0.02 / math.sqrt(2))
    assert c["task_mean_iou"]["pooled_within_split_sd"] is None  # one run per split


def test_a_family_without_a_common_split_is_refused_in_one_line(tmp_path):
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps({"rows": {**ROWS, "m__q_s5": _row(0.5)}}))
    proc = forked.run([sys.executable, str(rn.ROOT / "bench" / "run_noise.py"), "--baseline", "m__r", "--candidates", "m__q",
                       "--rows", str(rows), "--name", "run_noise_refused"], cwd=rn.ROOT, capture_output=True,
                      text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: --candidates m__q: expected another family")
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (rn.ROOT / "bench" / "results" / "run_noise_refused.json").exists()
    assert not (rn.ROOT / "docs" / "run_noise_refused.png").exists()
