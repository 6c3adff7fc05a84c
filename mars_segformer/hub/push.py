"""Publishing a finished run folder to the Hub in one commit."""

from __future__ import annotations

import json
import os
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi, get_token
from huggingface_hub.errors import HfHubHTTPError

from .backbone_card import BACKBONE_FILES, is_backbone_folder, render_backbone_card
from .card import render_card

#: What a finished run folder must hold.
REQUIRED = ("config.json", "model.safetensors", "preprocessor_config.json", "metrics.json")
#: Published besides the weights and config: pictures the card shows, and the numbers behind it.
EXTRAS = ("metrics.json", "split.json", "confusion_matrix.png", "training_curves.png", "predictions.png")


class HubPushError(RuntimeError):
    """A push that could not start or was refused; the Hub repo and the run folder are unchanged."""


def files_to_upload(run_dir: str | Path) -> list[Path]:
    """The files of ``run_dir`` that make up the published model (no checkpoints, optimizer or logs)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise HubPushError(f"{run_dir}: no such folder")
    if is_backbone_folder(run_dir):
        return _backbone_files(run_dir)
    missing = [f for f in REQUIRED if not (run_dir / f).is_file()]
    if missing:
        raise HubPushError(f"{run_dir} is not a finished run: missing {', '.join(missing)}")
    content = {}
    for name, need in (("config.json", "model_type"), ("metrics.json", "validation")):
        try:
            content[name] = json.loads((run_dir / name).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise HubPushError(f"{run_dir / name}: not valid JSON ({err})") from None
        if not isinstance(content[name], dict) or need not in content[name]:
            raise HubPushError(f"{run_dir / name}: missing key {need!r}; is this a train_hf.py run folder?")
    v = content["metrics.json"]["validation"]
    if not isinstance(v, dict) or not isinstance(v.get("task_mean_iou"), (int, float)):
        raise HubPushError(f"{run_dir / 'metrics.json'}: key 'validation' must hold a number 'task_mean_iou'")
    files = [run_dir / f for f in ("model.safetensors", "config.json", "preprocessor_config.json")]
    files += sorted(run_dir.glob("*.py"))  # modeling code of custom architectures (trust_remote_code)
    files += [run_dir / f for f in EXTRAS if (run_dir / f).is_file() and run_dir / f not in files]
    return files


def _backbone_files(folder: Path) -> list[Path]:
    """The files of a finished pretraining folder (``python -m mars_segformer.pretrain``)."""
    missing = [f for f in BACKBONE_FILES if not (folder / f).is_file()]
    if missing:
        raise HubPushError(f"{folder} is not a finished pretraining run: missing {', '.join(missing)}")
    try:
        json.loads((folder / "pretrain.json").read_text())["settings"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
        raise HubPushError(f"{folder / 'pretrain.json'}: not a pretraining record ({err})") from None
    return [folder / f for f in BACKBONE_FILES]


def push_run(run_dir: str | Path, repo_id: str | None, private: bool = False, revision: str | None = None,
             commit_message: str | None = None, dry_run: bool = False, token: str | None = None,
             template: str | Path | None = None) -> dict:
    """Upload a run folder with its rendered model card as one commit.

    Args:
        run_dir: a finished run folder (``train_hf.py`` output), or a pretrained backbone folder
            (``python -m mars_segformer.pretrain`` output), which gets its own card.
        repo_id: ``user/name`` on the Hub.
        private: create the repo private (ignored if it exists).
        revision: branch to commit to (created from main if missing); default main.
        commit_message: the commit's summary.
        dry_run: render the card and list the files, upload nothing.
        token: Hub token; default ``HF_TOKEN`` or the saved login.
        template: model card template path (default: the repository's ``model_card.md``).

    Returns:
        ``{"repo_id", "files", "card", "commit_oid", "commit_url", "changed"}`` (no commit fields on a dry
        run; ``changed`` is False when the Hub already held exactly these files and nothing was committed).
    """
    if not repo_id or "/" not in repo_id:
        raise HubPushError(f"--repo_id must look like 'user/name', got {repo_id!r}")
    run_dir = Path(run_dir)
    files = files_to_upload(run_dir)
    backbone = is_backbone_folder(run_dir)
    card = render_backbone_card(run_dir, repo_id) if backbone else render_card(run_dir, repo_id, template)
    result = {"repo_id": repo_id, "files": [f.name for f in files] + ["README.md"], "card": str(card)}
    if dry_run:
        return result
    token = token or os.environ.get("HF_TOKEN") or get_token()
    if not token:
        raise HubPushError("no Hugging Face token: set HF_TOKEN or run `hf auth login` first")
    api = HfApi(token=token)
    ops = [CommitOperationAdd(path_in_repo=f.name, path_or_fileobj=str(f)) for f in files]
    ops.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=str(card).encode()))
    try:
        card.validate()  # the Hub's own YAML check, before anything is written
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        if revision and revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        before = api.repo_info(repo_id, revision=revision or "main").sha
        info = api.create_commit(
            repo_id, operations=ops, revision=revision,
            commit_message=commit_message or (f"Upload {run_dir.name} (self-supervised backbone)" if backbone else
                                              f"Upload {run_dir.name} ({card.data.eval_results[0].metric_value} task mIoU)"),
        )
    except (HfHubHTTPError, ValueError) as err:
        raise HubPushError(f"upload of {run_dir} to {repo_id} failed, nothing was committed: {err}") from err
    # huggingface_hub drops files the Hub already holds unchanged, and makes no commit when none is left
    result.update(commit_oid=info.oid, commit_url=info.commit_url, changed=info.oid != before)
    return result
