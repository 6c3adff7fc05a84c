"""A stored ablation row plus new seeds must equal the row computed from all runs at once."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from bench import ablation
from bench.ablation import merge_rows, summarize

CLASSES = ("soil", "bedrock", "sand", "big_rock")


def row(seeds, scores, per_class, pr, runtime):
    """An ablation row as summarize() writes it, from per-run values."""
    return {"description": "d", "seeds": list(seeds), "n": len(seeds), "task_mean_iou": float(np.mean(scores)),
            "task_mean_iou_std": float(np.std(scores, ddof=1)) if len(seeds) > 1 else None,
            "per_class": {c: float(np.mean(per_class[:, i])) for i, c in enumerate(CLASSES)},
            "big_rock_precision": float(np.mean(pr[:, 0])), "big_rock_recall": float(np.mean(pr[:, 1])),
            "train_runtime_s": float(np.mean(runtime)), "measured_on": "m"}


@pytest.mark.parametrize("split", [1, 2, 3])
def test_merging_new_seeds_equals_the_row_of_all_runs(split):
    rng = np.random.default_rng(split)
    scores, per_class, pr, runtime = rng.random(5), rng.random((5, 4)), rng.random((5, 2)), rng.random(5) * 100
    parts = [slice(0, split), slice(split, 5)]
    earlier, new = (row(range(5)[s], scores[s], per_class[s], pr[s], runtime[s]) for s in parts)
    merged = merge_rows(earlier, new)
    assert merged["seeds"] == [0, 1, 2, 3, 4] and merged["n"] == 5
    assert merged["task_mean_iou"] == pytest.approx(scores.mean(), abs=1e-12)
    assert merged["task_mean_iou_std"] == pytest.approx(scores.std(ddof=1), abs=1e-12)
    for i, c in enumerate(CLASSES):
        assert merged["per_class"][c] == pytest.approx(per_class[:, i].mean(), abs=1e-12)
    assert merged["big_rock_recall"] == pytest.approx(pr[:, 1].mean(), abs=1e-12)
    assert merged["train_runtime_s"] == pytest.approx(runtime.mean(), abs=1e-9)


def test_a_seed_run_again_replaces_the_stored_row_and_missing_sides_pass_through():
    a = row([0, 1], np.array([0.5, 0.6]), np.ones((2, 4)), np.ones((2, 2)), np.ones(2))
    a["seed_scores"] = {"0": 0.5, "1": 0.6}
    b = row([1], np.array([0.7]), np.zeros((1, 4)), np.zeros((1, 2)), np.ones(1))
    b["seed_scores"] = {"1": 0.7}
    assert merge_rows(a, b) is b
    assert merge_rows(None, b) is b and merge_rows(a, None) is a


def write_run(root, name, seed, score, per_class, pr, runtime):
    """A finished ablation run folder (metrics.json) with a confusion matrix of the given big-rock precision/recall."""
    hit = 100.0
    cm = np.zeros((5, 5))
    cm[4, 4], cm[1, 4], cm[4, 1] = hit, hit / pr[0] - hit, hit / pr[1] - hit  # column 4: precision, row 4: recall
    v = {"task_mean_iou": float(score), **{f"iou_{c}": float(per_class[i]) for i, c in enumerate(CLASSES)}}
    folder = root / f"{name}_s{seed}"
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"seed": seed, "validation": v, "confusion_matrix": cm.tolist(),
                                                     "train_runtime_s": float(runtime)}))


def test_new_seeds_beside_runs_a_stored_row_holds_merge_into_it_once(tmp_path):
    # the stored row holds seeds 0-4 (0-1 measured elsewhere, 2-4 here); this checkout adds seeds 5 and 6:
    # rendering must give the row of all seven runs, and rendering again must change nothing
    rng = np.random.default_rng(7)
    scores, per_class, pr = rng.random(7), rng.random((7, 4)), 0.1 + 0.8 * rng.random((7, 2))
    runtime = rng.random(7) * 100
    stored = merge_rows(row(range(2), scores[:2], per_class[:2], pr[:2], runtime[:2]),
                        row(range(2, 5), scores[2:5], per_class[2:5], pr[2:5], runtime[2:5]))
    for seed in range(2, 7):
        write_run(tmp_path, "9_combo", seed, scores[seed], per_class[seed], pr[seed], runtime[seed])
    new = summarize(tmp_path, ["9_combo"], 200, stored={"9_combo": stored})["rows"]["9_combo"]
    assert new["seeds"] == [5, 6]
    merged = merge_rows(stored, new)
    assert merged["seeds"] == list(range(7))
    assert merged["task_mean_iou"] == pytest.approx(scores.mean(), abs=1e-12)
    assert merged["task_mean_iou_std"] == pytest.approx(scores.std(ddof=1), abs=1e-12)
    assert merged["big_rock_recall"] == pytest.approx(pr[:, 1].mean(), abs=1e-9)
    # again, now that the row holds seeds 5 and 6 with their scores: nothing left to merge
    assert summarize(tmp_path, ["9_combo"], 200, stored={"9_combo": merged})["rows"] == {}
    # a seed the row holds, run again with another score, is a new measurement: it replaces the stored row
    (tmp_path / "9_combo_s6" / "metrics.json").unlink()
    (tmp_path / "9_combo_s6").rmdir()
    write_run(tmp_path, "9_combo", 6, scores[6] + 0.01, per_class[6], pr[6], runtime[6])
    rerun = summarize(tmp_path, ["9_combo"], 200, stored={"9_combo": merged})["rows"]["9_combo"]
    assert rerun["seeds"] == [6] and merge_rows(merged, rerun) is rerun


def test_a_config_whose_name_continues_with_s_is_not_read_as_a_seed(tmp_path):
    # "X_s*" also matches "X_s2_bf16_s0": each config's row must hold its own runs only
    rng = np.random.default_rng(3)
    short = "25_combo_logit_adj_frame_shift_p1_convnext_atto"
    longer = f"{short}_s2_bf16"
    for name, seed, score in ((short, 0, 0.2), (longer, 0, 0.4), (longer, 1, 0.6)):
        write_run(tmp_path, name, seed, score, rng.random(4), 0.1 + 0.8 * rng.random(2), 10.0)
    rows = summarize(tmp_path, [short, longer], 200)["rows"]
    assert rows[short]["seeds"] == [0] and rows[short]["task_mean_iou"] == pytest.approx(0.2)
    assert rows[longer]["seeds"] == [0, 1] and rows[longer]["task_mean_iou"] == pytest.approx(0.5)


def test_a_named_rerun_writes_its_own_file_and_leaves_the_main_results_and_docs(tmp_path, monkeypatch):
    # a config re-run beside a candidate on one machine (--name) must not replace the row the docs cite
    results, docs = tmp_path / "results", tmp_path / "docs"
    results.mkdir()
    main = results / "ablation_200_steps.json"
    main.write_text(json.dumps({"rows": {"9_combo": row([0, 1], [0.5, 0.6], np.full((2, 4), 0.5),
                                                         np.full((2, 2), 0.5), [1.0, 1.0])}}))
    before = main.read_text()
    runs = tmp_path / "pair"
    write_run(runs, "9_combo", 0, 0.55, np.full(4, 0.4), np.array([0.5, 0.5]), 10.0)
    write_run(runs, "9_combo", 1, 0.65, np.full(4, 0.4), np.array([0.5, 0.5]), 10.0)
    monkeypatch.setattr(ablation, "RESULTS", results)
    monkeypatch.setattr(ablation, "ROOT", tmp_path)
    monkeypatch.setattr(sys, "argv", ["ablation.py", "--steps", "200", "--render-only", "--out", str(runs),
                                      "--name", "pair_rerun"])
    ablation.main()
    assert main.read_text() == before and not docs.exists()
    pair = json.loads((results / "pair_rerun.json").read_text())["rows"]
    assert list(pair) == ["9_combo"] and pair["9_combo"]["seeds"] == [0, 1]
    assert pair["9_combo"]["task_mean_iou"] == pytest.approx(0.60)  # (0.55 + 0.65) / 2


def test_each_seeds_big_rock_is_kept_merged_and_backfilled_from_folders_still_there(tmp_path):
    # big rock per seed (the issue-19 class) beside seed_scores: new runs record it, a merge keeps both sides',
    # and a row stored before it was kept gets it from the run folders it holds, never for a folder that is gone
    rng = np.random.default_rng(11)
    scores, per_class, pr = rng.random(4), rng.random((4, 4)), 0.1 + 0.8 * rng.random((4, 2))
    for seed in range(4):
        write_run(tmp_path, "9_combo", seed, scores[seed], per_class[seed], pr[seed], 10.0)
    new = summarize(tmp_path, ["9_combo"], 200)["rows"]["9_combo"]
    assert new["seed_big_rock"] == {str(s): pytest.approx(per_class[s, 3]) for s in range(4)}
    old = row(range(2), scores[:2], per_class[:2], pr[:2], [10.0, 10.0])  # stored before seed_big_rock existed
    old["seed_scores"] = {"0": scores[0], "1": scores[1]}
    later = summarize(tmp_path, ["9_combo"], 200, stored={"9_combo": old})["rows"]["9_combo"]
    merged = merge_rows(old, later)
    assert merged["seed_big_rock"] == {"2": pytest.approx(per_class[2, 3]), "3": pytest.approx(per_class[3, 3])}
    (tmp_path / "9_combo_s1" / "metrics.json").unlink()  # seed 1's folder is gone: it stays unknown
    filled = ablation.backfill_seed_big_rock(merged, tmp_path, "9_combo")
    assert filled["seed_big_rock"] == {str(s): pytest.approx(per_class[s, 3]) for s in (0, 2, 3)}
    assert ablation.backfill_seed_big_rock(filled, tmp_path, "9_combo") is filled
