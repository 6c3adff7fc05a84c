"""TensorBoard (optional extra): loss, learning rate, validation task mIoU and per-class IoU as scalars,
and the prediction grid of every evaluation as an image, read back from the event files."""

import pytest

from mars_segformer.training import main

pytest.importorskip("tensorboard", reason="TensorBoard is the optional extra [tensorboard]")


def test_training_writes_tensorboard_events(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    assert main(["--output_dir", str(out), "--model", "unet", "--tiny", "--max_steps", "4",
                 "--per_device_train_batch_size", "8", "--eval_strategy", "steps", "--eval_steps", "2",
                 "--save_strategy", "steps", "--save_steps", "2", "--logging_steps", "1", "--report_to", "tensorboard",
                 "--disable_tqdm", "true", "--logit_adjustment", "0"]) == 0
    logs = [p.parent for p in out.glob("runs/*/events.out.tfevents.*")]
    assert len(set(logs)) == 1, logs
    acc = EventAccumulator(str(logs[0]), size_guidance={"images": 0, "scalars": 0}).Reload()
    tags = acc.Tags()
    for tag in ("train/loss", "train/learning_rate", "eval/task_mean_iou", "eval/iou_big_rock", "eval/iou_soil"):
        assert tag in tags["scalars"], (tag, tags["scalars"])
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2, 3, 4]
    steps = [e.step for e in acc.Scalars("eval/task_mean_iou")]
    assert steps[:2] == [2, 4]
    assert all(0 <= e.value <= 1 for e in acc.Scalars("eval/task_mean_iou"))
    images = acc.Images("validation/predictions")
    assert [im.step for im in images][:2] == [2, 4] and images[0].width > 100 and images[0].height > 100
