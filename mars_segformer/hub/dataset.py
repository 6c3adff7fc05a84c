"""Publishing a tile file as a Hub dataset (``DatasetDict`` of ``Image`` features) with a dataset card."""

from __future__ import annotations

import io
import os

import numpy as np

from ..data import CLASS_NAMES, MarsArrays, train_val_split
from ..data.chunks import class_pixel_counts
from ..data.io import FRAME_SIZE, NATIVE_FRAME_SIZE, TILE_SHAPE
from ..data.split import SPLIT_SEED, VAL_FRACTION
from ..visualization import PALETTE
from .push import HubPushError

CARD = """
# {pretty_name}

Curiosity (MSL) NAVCAM terrain tiles of {h}×{w} pixels with per-pixel labels, in the layout the
`mars-segformer` package trains on. Published from `{source}`.

| id | class | colour (overlays) | pixel share (labelled splits) |
|---|---|---|---|
{class_rows}

## Splits

| split | tiles | frames |
|---|---|---|
{split_rows}

Train and validation are split **by rover frame** (seeded, {val_pct} % of the frames held out, seed
{seed}): tiles of one frame overlap in content, so a tile-level split would leak. `test` holds
unlabelled tiles (`mask` is empty) from other frames.

## Columns
- `image`: the grayscale tile (PNG).
- `mask`: class ids 0-4 per pixel (PNG, mode L); 0 = background / unlabelled.
- `frame_id`: the rover frame the tile was cut from.

## How the tiles were made
Each {native}×{native} NAVCAM frame was reduced to {frame}×{frame} (image bilinear, mask nearest)
and cut into 8 non-overlapping {h}×{w} tiles (4 rows × 2 columns, row-major); tiles with under 10 %
labelled pixels were dropped. A tile pixel covers {k}×{k} native pixels: bring whole frames to that
scale before predicting. AI4Mars labels were mapped 255 → 0, soil 0 → 1, bedrock 1 → 2, sand 2 → 3,
big rock 3 → 4.

```python
from datasets import load_dataset
ds = load_dataset("{repo_id}")
```

```bash
python train_hf.py --data {repo_id}        # train on it with mars-segformer
```

## Licence and citation
Public NASA/JPL-Caltech data (AI4Mars). Cite:

R. Michael Swan, Deegan Atha, Henry A. Leopold, Matthew Gildner, Stephanie Oij, Cindy Chiu,
Masahiro Ono. *AI4MARS: A Dataset for Terrain-Aware Autonomous Driving on Mars.* CVPR Workshops 2021.
"""


def _png(array: np.ndarray) -> dict:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


def arrays_to_dataset_dict(arrays: MarsArrays, val_fraction: float = VAL_FRACTION, seed: int = SPLIT_SEED):
    """Train / validation (by frame) / test ``DatasetDict`` with ``Image`` features."""
    from datasets import Dataset, DatasetDict, Features, Image, Value

    features = Features({"image": Image(), "mask": Image(), "frame_id": Value("string")})
    tr, va = train_val_split(arrays.train_masks, arrays.train_frame_ids, val_fraction, seed)
    ids = arrays.train_frame_ids if arrays.train_frame_ids is not None else np.array([f"tile{i}" for i in range(len(arrays))])
    test_ids = (arrays.test_frame_ids if arrays.test_frame_ids is not None
                else np.array([f"test{i}" for i in range(len(arrays.test_images))]))

    def split(idx, labelled=True):
        return Dataset.from_dict({
            "image": [_png(arrays.train_images[i]) for i in idx] if labelled else [_png(t) for t in arrays.test_images],
            "mask": [_png(arrays.train_masks[i]) for i in idx] if labelled else [None] * len(arrays.test_images),
            "frame_id": [str(ids[i]) for i in idx] if labelled else [str(f) for f in test_ids],
        }, features=features)

    return DatasetDict(train=split(tr), validation=split(va), test=split(None, labelled=False)), (tr, va, ids, test_ids)


def render_dataset_card(arrays: MarsArrays, repo_id: str, parts, val_fraction: float, seed: int, base_card=None):
    """The dataset card: classes and colours, class shares, splits, how tiles were made, licence, citation."""
    from huggingface_hub import DatasetCard, DatasetCardData

    tr, va, ids, test_ids = parts
    counts = class_pixel_counts(arrays.train_masks, num_classes=len(CLASS_NAMES))
    share = counts / counts.sum()
    class_rows = "\n".join(f"| {i} | {n.replace('_', ' ')} | rgb{tuple(int(v) for v in PALETTE[i])} | {share[i]:.2%} |"
                           for i, n in enumerate(CLASS_NAMES))
    split_rows = "\n".join(f"| {name} | {len(idx)} | {len(set(map(str, frames)))} |" for name, idx, frames in (
        ("train", tr, ids[tr]), ("validation", va, ids[va]), ("test", test_ids, test_ids)))
    data = base_card.data if base_card is not None else DatasetCardData()
    data.license = "other"
    data.license_name = "nasa-public-data"
    data.task_categories = ["image-segmentation"]
    data.task_ids = ["semantic-segmentation"]
    data.tags = ["mars", "ai4mars", "planetary-science", "curiosity", "navcam"]
    data.pretty_name = "AI4Mars MSL 64x128 terrain tiles"
    h, w = TILE_SHAPE
    text = CARD.format(pretty_name=data.pretty_name, h=h, w=w, source=os.path.basename(str(arrays.source)),
                       class_rows=class_rows, split_rows=split_rows, val_pct=round(val_fraction * 100), seed=seed,
                       native=NATIVE_FRAME_SIZE, frame=FRAME_SIZE, k=NATIVE_FRAME_SIZE // FRAME_SIZE, repo_id=repo_id)
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n{text}")


def push_dataset(arrays: MarsArrays, repo_id: str, private: bool = False, revision: str | None = None,
                 token: str | None = None, val_fraction: float = VAL_FRACTION, seed: int = SPLIT_SEED, dry_run: bool = False) -> dict:
    """Publish ``arrays`` as a Hub dataset and its card. Returns ``{"repo_id", "splits", "card"}``."""
    from huggingface_hub import DatasetCard, HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError

    if not repo_id or "/" not in repo_id:
        raise HubPushError(f"--repo_id must look like 'user/name', got {repo_id!r}")
    dd, parts = arrays_to_dataset_dict(arrays, val_fraction, seed)
    result = {"repo_id": repo_id, "splits": {k: len(v) for k, v in dd.items()}}
    if dry_run:
        result["card"] = str(render_dataset_card(arrays, repo_id, parts, val_fraction, seed))
        return result
    token = token or os.environ.get("HF_TOKEN") or get_token()
    if not token:
        raise HubPushError("no Hugging Face token: set HF_TOKEN or run `hf auth login` first")
    try:
        api = HfApi(token=token)
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        if revision and revision != "main":
            api.create_branch(repo_id, repo_type="dataset", branch=revision, exist_ok=True)
        dd.push_to_hub(repo_id, token=token, revision=revision, private=private)
        # push_to_hub wrote a README with the split metadata; keep that metadata, add ours and the text
        base = DatasetCard.load(repo_id, repo_type="dataset", token=token) if revision in (None, "main") else None
        card = render_dataset_card(arrays, repo_id, parts, val_fraction, seed, base_card=base)
        card.push_to_hub(repo_id, repo_type="dataset", token=token, revision=revision)
    except (HfHubHTTPError, ValueError, OSError) as err:
        raise HubPushError(f"upload of {arrays.source} to dataset {repo_id} failed: {str(err).splitlines()[0]}") from None
    result["card"] = str(card)
    return result
