"""Per-instance big-rock scores, against masks whose objects and outcomes are drawn by hand."""

import numpy as np

from mars_segformer.metrics.instances import instance_scores


def test_instances_are_counted_found_and_traced_by_size():
    truth = np.full((2, 16, 32), 2, np.uint8)  # bedrock everywhere
    pred = truth.copy()
    # tile 0: a 2x2 pebble (4 px) predicted as soil; a 10x10 rock (100 px) with 60 px found, 40 px taken for bedrock
    truth[0, 1:3, 1:3] = 4
    pred[0, 1:3, 1:3] = 1
    truth[0, 4:14, 10:20] = 4
    pred[0, 4:10, 10:20] = 4
    # tile 1: two rocks touching only at a corner are one instance (8-connectivity): 3x3 + 3x3 = 18 px, 8 found
    truth[1, 0:3, 0:3] = 4
    truth[1, 3:6, 3:6] = 4
    pred[1, 0:3, 0:3] = 4
    pred[1, 0, 0] = 3  # one pixel of it taken for sand
    pred[1, 3:6, 3:6] = 2
    # a false alarm and background truth do not make instances
    pred[1, 10:12, 20:22] = 4
    truth[1, 14:16, :] = 0
    rows = {r["size"]: r for r in instance_scores(truth, pred, class_names=["bg", "soil", "bedrock", "sand", "rock"])}
    assert rows["1-15"] == {"size": "1-15", "instances": 1, "found": 0, "pixels": 4, "found_share": 0.0,
                            "pixel_recall": 0.0, "predicted_as": {"soil": 4}}
    assert rows["16-63"]["instances"] == 1 and rows["16-63"]["pixels"] == 18
    assert rows["16-63"]["found"] == 0  # 8 of 18 pixels is under half
    assert rows["16-63"]["predicted_as"] == {"bedrock": 9, "sand": 1, "rock": 8}
    assert rows["64-255"]["found"] == 1 and rows["64-255"]["pixel_recall"] == 0.6
    assert rows["64-255"]["predicted_as"] == {"bedrock": 40, "rock": 60}
    assert rows["256-1023"]["instances"] == 0 and rows["256-1023"]["pixel_recall"] is None
    assert rows["1024+"]["found_share"] is None


def test_the_share_that_counts_as_found_is_a_setting():
    truth = np.zeros((1, 8, 8), np.uint8)
    truth[0, :4, :4] = 4
    pred = truth.copy()
    pred[0, :1, :4] = 2  # 12 of 16 pixels found
    assert instance_scores(truth, pred, found_share=0.75)[1]["found"] == 1
    assert instance_scores(truth, pred, found_share=0.8)[1]["found"] == 0


def test_by_edge_splits_each_bin_into_rocks_the_tile_cuts_and_rocks_inside_it():
    truth = np.full((1, 16, 32), 2, np.uint8)
    pred = truth.copy()
    truth[0, 0:4, 20:24] = 4  # 16 px on the top border, all found
    pred[0, 0:4, 20:24] = 4
    truth[0, 6:10, 6:10] = 4  # 16 px inside, none found
    truth[0, 12:16, 28:32] = 4  # 16 px in the bottom-right corner, half found
    pred[0, 12:14, 28:32] = 4
    truth[0, 1:3, 1:3] = 4  # 4 px, one pixel from the border: inside
    rows = instance_scores(truth, pred, by_edge=True)
    assert len(rows) == 2 * 5 and [r["edge"] for r in rows[:2]] == [True, False]
    cut, inside = ({(r["size"]): r for r in rows if r["edge"] is e} for e in (True, False))
    assert cut["16-63"]["instances"] == 2 and cut["16-63"]["found"] == 2 and cut["16-63"]["pixel_recall"] == 0.75
    assert inside["16-63"]["instances"] == 1 and inside["16-63"]["found"] == 0
    assert inside["1-15"]["instances"] == 1 and cut["1-15"]["instances"] == 0
    # the split loses nothing: per bin, the two rows add up to the unsplit row
    whole = {r["size"]: r for r in instance_scores(truth, pred)}
    for size, r in whole.items():
        assert r["instances"] == cut[size]["instances"] + inside[size]["instances"]
        assert r["found"] == cut[size]["found"] + inside[size]["found"]
