"""Rendering the model card (``README.md`` of a Hub repo) from a run folder and ``hub/model_card.md``."""

from __future__ import annotations

import json
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..data.frame_shift import EARLIER_SHIFT_P, until_text, zoom_text
from ..data.io import CLASS_NAMES, TILE_SHAPE

#: The template ships inside the package (``hub/model_card.md``), so a wheel install renders cards too.
TEMPLATE_CANDIDATES = (Path(__file__).resolve().parent / "model_card.md",)

ARCHITECTURES = {
    "segformer": "SegFormer (Mix Transformer encoder, all-MLP decoder)",
    "upernet": "UperNet (pyramid pooling + FPN decoder) on a {backbone} backbone",
    "mars_unet": "UNet",
    "mars_timm_segformer": "SegFormer-style all-MLP decoder on a timm encoder",
    "mars_deeplabv3plus": "DeepLabV3+ on a timm encoder",
    "mars_timm_unet": "UNet decoder on a timm encoder",
}


def template_path() -> Path:
    for p in TEMPLATE_CANDIDATES:
        if p.is_file():
            return p
    raise FileNotFoundError(
        f"model card template not found at {TEMPLATE_CANDIDATES[0]}; pass the path of a model_card.md template"
    )


def _scheduler(value) -> str:
    """``SchedulerType.POLYNOMIAL`` (an enum's str in older metrics.json files) -> ``polynomial``."""
    text = str(value or "n/a")
    return text.split(".", 1)[1].lower() if text.startswith("SchedulerType.") else text


def _weights(weights) -> str:
    """Class weights to 3 significant digits."""
    if not weights:
        return "none"
    return ", ".join(f"{float(w):.3g}" for w in weights)


def _fmt(x, digits=4):
    return "n/a" if x is None or x != x else f"{x:.{digits}f}"


def _architecture(config: dict) -> str:
    """The architecture's phrase; UperNet's names its backbone (ResNet, ConvNeXt with its stem's stride, ...)."""
    model_type = config.get("model_type", "")
    backbone = config.get("backbone_config") or {}
    name = {"resnet": "ResNet", "convnext": "ConvNeXt"}.get(backbone.get("model_type"), backbone.get("model_type", ""))
    if backbone.get("model_type") == "convnext":
        name += f" (stem stride {backbone.get('patch_size', 4)})"
    return ARCHITECTURES.get(model_type, model_type).format(backbone=name)


def _card_data(repo_id: str, model_type: str, m: dict) -> ModelCardData:
    """The card's metadata block: tags, base model, the validation score as an eval result."""
    start = m.get("base_model") or {}
    return ModelCardData(
        base_model=start.get("source") if start.get("kind") == "hub" else None,
        language=None,
        license="apache-2.0",
        library_name="transformers",
        pipeline_tag="image-segmentation",
        tags=["image-segmentation", "semantic-segmentation", "mars", "ai4mars", "planetary-science",
              model_type.replace("_", "-")],
        datasets=["ai4mars"],
        metrics=["mean_iou"],
        model_name=repo_id.split("/")[-1],
        eval_results=[
            EvalResult(task_type="image-segmentation", task_name="Semantic segmentation",
                       dataset_type="ai4mars", dataset_name="AI4Mars MSL 64x128 tiles (frame-grouped validation split)",
                       metric_type="mean_iou", metric_name="mean IoU, classes 1-4, background ignored",
                       metric_value=round(float(m["validation"]["task_mean_iou"]), 4)),
        ],
    )


def _frame_reads(info: dict | None) -> str:
    """The card's line for ``metrics.json``'s ``frame_shift`` entry (None: neither augmentation named; a run of an
    earlier release recorded no ``p`` and moved :data:`EARLIER_SHIFT_P` of the reads)."""
    if not info:
        return "off"
    if not info.get("frames"):
        return "named, but the data has no complete frames to read from"
    zoom = zoom_text(info.get("scale") or (1, 1))
    zoom += until_text(info.get("zoom_until", 1.0)) if zoom else ""
    return f"{info['frames']} complete training frames, {info.get('p', EARLIER_SHIFT_P):.0%} of their tiles' reads moved{zoom}"


def _distillation(info: dict | None) -> str:
    """The card's line for ``metrics.json``'s ``distillation`` entry (None: trained on the labels alone)."""
    if not info:
        return "none"
    seen = ", each complete frame seen whole" if info.get("view") == "frame" else ""
    if info.get("self_from") is not None:
        return (f"the run's own averaged weights from {info['self_from']:.0%} of the steps ({info['refreshes']} "
                f"refreshes){seen}, weight {info['weight']:g}")
    names = ", ".join(Path(t).name for t in info["teachers"])
    return (f"mean class probabilities of {len(info['teachers'])} teacher run(s) ({names}){seen}, "
            f"weight {info['weight']:g}")


def _recipe_rows(m: dict) -> str:
    """The card's recipe table (markdown rows) from ``metrics.json``."""
    start = m.get("base_model") or {}
    recipe = {
        "architecture": m.get("model"), "loss": m.get("loss"), "focal gamma": m.get("focal_gamma"),
        "class weights": _weights(m.get("class_weights")), "background ignored in loss": m.get("ignore_background"),
        "augmentations": ", ".join(m.get("augmentations") or []) or "none",
        "shifted frame reads (frame_shift, frame_zoom)": _frame_reads(m.get("frame_shift")),
        "CutMix probability": m.get("cutmix_p"),
        "big-rock oversampling": m.get("oversample_big_rock"),
        "repeat-factor sampling threshold": m.get("repeat_factor_threshold", 0), "optimizer": "AdamW",
        "learning rate": m.get("learning_rate"), "weight decay": m.get("weight_decay"),
        "gradient clipping": m.get("max_grad_norm"), "batch size": m.get("batch_size"),
        "LR schedule": _scheduler(m.get("lr_scheduler_type")),
        "epochs run": "n/a" if m.get("epochs_run") is None else f"{float(m['epochs_run']):.2f}",
        "steps": m.get("global_step"), "weight averaging": m.get("weight_averaging", "none"),
        "distillation": _distillation(m.get("distillation")),
        "training precision": m.get("training_precision", "not recorded"),
        "logit adjustment (tau)": m.get("logit_adjustment_tau", 0),
        "tiles resized before the model": f"x{m.get('input_scale') or 1:g}",
        "seed": m.get("seed"), "train tiles (after oversampling)": f"{m.get('train_tiles')} ({m.get('train_rows_after_oversampling')})",
        "outlier tiles dropped": m.get("outliers_dropped"),
        "started from": (f"{start['source']}" + (f"@{start['revision']}" if start.get("revision") else "")
                         + f" ({start['kind']}; {start['tensors_loaded']} tensors loaded, {start['tensors_new']} new)")
        if start else "random initialisation",
    }
    return "\n".join(f"| {k} | {val} |" for k, val in recipe.items())


def _frame_context_note(m: dict) -> str:
    """A sentence with the validation score of the tiles seen inside their frames, where the run measured it."""
    c = m.get("validation_frame_context")
    if not c:
        return ""
    return (f"\nSeen inside their frames (each frame's tiles put back together by their frame ids: mars-segformer's "
            f"`predict --context frame`, {c['tiles_in_frames']} of the {m.get('validation_tiles')} tiles inside a frame), "
            f"the same tiles score **{_fmt(c['task_mean_iou'])}** (big rock {_fmt(c.get('iou_big_rock'))}); the task "
            "score above is tile by tile.")


def render_card(run_dir: str | Path, repo_id: str, template: str | Path | None = None) -> ModelCard:
    """The model card of a finished run folder.

    Args:
        run_dir: folder with ``config.json`` and ``metrics.json``.
        repo_id: the Hub repo the card is for (used in the usage snippet).
        template: a Jinja template path (default: the package's ``hub/model_card.md``).
    """
    run_dir = Path(run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    m = json.loads((run_dir / "metrics.json").read_text())
    v = m["validation"]
    model_type = config.get("model_type", "")
    custom = "auto_map" in config
    names = m.get("class_names") or CLASS_NAMES
    start = m.get("base_model") or {}
    card_data = _card_data(repo_id, model_type, m)
    per_class = "\n".join(f"| {n.replace('_', ' ')} | {_fmt(v.get(f'iou_{n}'))} |" for n in names[1:])
    recipe_rows = _recipe_rows(m)
    data = m.get("data", "")
    data_description = (
        f"Trained on `{Path(str(data)).name}` ({m.get('train_tiles')} training and {m.get('validation_tiles')} "
        f"validation tiles)."
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(template or template_path()),
        model_name=repo_id.split("/")[-1],
        repo_id=repo_id,
        architecture=_architecture(config),
        tile_size="×".join(map(str, TILE_SHAPE)),
        start_note=f"starting from `{start['source']}`" if start else "from scratch",
        task_mean_iou=_fmt(v["task_mean_iou"]),
        mean_iou=_fmt(v.get("mean_iou")),
        validation_tiles=m.get("validation_tiles"),
        frame_context_note=_frame_context_note(m),
        split="split by rover frame",
        per_class_rows=per_class,
        recipe_rows=recipe_rows,
        data_description=data_description,
        remote_code_arg=", trust_remote_code=True" if custom else "",
        remote_code_note=(
            "\nThis architecture ships its own modeling code in this repository (`modeling_*.py`), hence "
            "`trust_remote_code=True`; read it before you run it. transformers logs that the class \"is not "
            "supported for image-segmentation\" because it is not built in; the pipeline runs it." if custom else
            f"\n{config.get('architectures', ['This architecture'])[0]} is part of transformers: no remote code is needed."
        ),
    )
