"""What a finished pretraining run leaves: the backbone checkpoint, its image processor, the record, the loss curve."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

from ..hub.backbone_card import RECORD
from ..outputs import atomic_path, atomic_write_json

#: the resumable state of an unfinished run, inside its output folder
STATE = Path("checkpoint") / "state.pt"


def plot_loss(log: list[dict], path: Path) -> None:
    """The loss curve (total, global and dense terms) against steps, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    steps = [r["step"] for r in log]
    for key, label in (("loss", "DenseCL loss"), ("loss_global", "global (MoCo) term"), ("loss_local", "dense term")):
        ax.plot(steps, [r[key] for r in log], label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("InfoNCE loss")
    ax.set_title("Self-supervised pretraining (DenseCL)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def write_outputs(out: Path, model, config, data_record: dict, log: list[dict], seconds: float) -> dict:
    """Write the finished run's files into ``out`` (each replaced whole) and drop its checkpoint."""
    from ..models.image_processing import make_image_processor
    from .devices import describe_machine

    backbone = model.pretrained_backbone()
    record = {"method": "DenseCL (lightly heads and loss, transformers ResNetBackbone)", "settings": asdict(config),
              "data": data_record, "steps": config.max_steps, "images_seen": config.max_steps * config.batch_size,
              "seconds": round(seconds, 1), "images_per_s": round(config.max_steps * config.batch_size / max(seconds, 1e-9), 2),
              "loss_first": log[0]["loss"] if log else None, "loss_last": log[-1]["loss"] if log else None,
              "log": log, "machine": describe_machine(), "backbone": {"model_type": backbone.config.model_type,
                                                             "architecture": type(backbone).__name__,
                                                             "parameters": sum(p.numel() for p in backbone.parameters())}}
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".pretrain-", dir=out))
    try:  # the library writers go to a staging folder; each file then replaces its old copy in one rename
        backbone.save_pretrained(staging)
        make_image_processor().save_pretrained(staging)
        for name in ("config.json", "model.safetensors", "preprocessor_config.json"):
            os.replace(staging / name, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    plot_loss(log, out / "pretrain_loss.png")
    atomic_write_json(out / RECORD, record)
    shutil.rmtree((out / STATE).parent, ignore_errors=True)
    return record
