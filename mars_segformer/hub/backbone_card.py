"""The model card of a pretrained backbone folder (``python -m mars_segformer.pretrain`` output)."""

from __future__ import annotations

import json
from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData

TEMPLATE = Path(__file__).resolve().parent / "backbone_card.md"
#: the file that marks a folder as a pretraining run's
RECORD = "pretrain.json"
#: the files of a finished pretraining folder (what ``push_to_hub.py`` publishes, with the card)
BACKBONE_FILES = ("config.json", "model.safetensors", "preprocessor_config.json", RECORD, "pretrain_loss.png")


def is_backbone_folder(folder: str | Path) -> bool:
    """A finished pretraining folder (its record, no training metrics)."""
    folder = Path(folder)
    return (folder / RECORD).is_file() and not (folder / "metrics.json").is_file()


def _three(values) -> str:
    return "(" + ", ".join(f"{float(v):.3g}" for v in values) + ")"


def render_backbone_card(folder: str | Path, repo_id: str) -> ModelCard:
    """The card of a pretraining folder: what the backbone is, how to start from it, how it was pretrained."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    record = json.loads((folder / RECORD).read_text())
    processor = json.loads((folder / "preprocessor_config.json").read_text())
    s, d, machine = record["settings"], record["data"], record.get("machine") or {}
    depth = sum(config.get("depths", [])) * 2 + 2 if config.get("layer_type") == "basic" else None
    architecture = f"ResNet-{depth}-shaped" if depth in (18, 34) else "ResNet"
    card_data = ModelCardData(
        license="apache-2.0", library_name="transformers", pipeline_tag="image-feature-extraction",
        tags=["image-feature-extraction", "self-supervised", "densecl", "backbone", "mars", "ai4mars",
              "planetary-science", "resnet"],
        datasets=["ai4mars"], model_name=repo_id.split("/")[-1])
    settings = {
        "method": record["method"], "backbone": f"{architecture} (`{config.get('architectures', ['ResNetBackbone'])[0]}`, "
        f"{record['backbone']['parameters']:,} parameters)", "for the preset": s["model"],
        "steps x tiles per step": f"{s['max_steps']} x {s['batch_size']} (two augmented views of each)",
        "optimizer": f"AdamW, peak rate {s['learning_rate']:g}, weight decay {s['weight_decay']:g}, warm-up "
        f"{s['warmup_ratio']:.0%}, cosine", "key encoder momentum": f"{s['momentum']:g} -> 1 (cosine)",
        "queue (negatives)": s["queue_size"], "temperature": s["temperature"],
        "dense-term weight": s["local_weight"], "seed (split)": s["seed"],
        "pretraining time": f"{record['seconds']:.0f} s, {record['images_per_s']:g} images/s on "
        f"{machine.get('cpu', '?')} ({machine.get('cpu_capability', '?')}, {machine.get('torch_threads', '?')} "
        f"threads{', ' + machine['gpu'] if machine.get('gpu') else ''})",
        "loss first -> last": f"{record['loss_first']:.3f} -> {record['loss_last']:.3f}",
    }
    data_description = (
        f"Images of `{Path(str(d.get('source', 'the tile file'))).name}`, masks unused: {d['labelled_tiles']} labelled "
        f"training tiles and {d['unlabelled_tiles']} unlabelled tiles. Kept out so that a run validated on the same "
        f"split (`--seed {s['seed']} --val_fraction {s['val_fraction']:g}`) is not scored on images the encoder has "
        f"studied: {d['validation_tiles_excluded']} validation tiles and {d['unlabelled_tiles_excluded']} unlabelled "
        "tiles of validation frames.")
    return ModelCard.from_template(
        card_data, template_path=str(TEMPLATE), model_name=repo_id.split("/")[-1], repo_id=repo_id,
        architecture=architecture, tile_size="64×128", image_mean=_three(processor["image_mean"]),
        image_std=_three(processor["image_std"]),
        settings_rows="\n".join(f"| {k} | {v} |" for k, v in settings.items()), data_description=data_description,
        evidence_note="Fine-tuning from this kind of backbone against training from scratch, at equal fine-tuning "
        "samples with 10 %, 25 % and 100 % of the labelled frames, is measured by the package's "
        "`bench/pretrain.py` (table in its `docs/pretrain.md`): read it before you expect a gain.")
