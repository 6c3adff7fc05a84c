"""Run ``pipeline("image-segmentation")`` over saved model folders in a process where
``mars_segformer`` cannot be imported, and print each folder's predicted label map as JSON.

Usage: python tests/fresh_pipeline.py IMAGES.npy MODEL[@REVISION][:remote] ...
(MODEL: a folder or a Hub repo id; the Hub is whatever HF_ENDPOINT points at)
"""

import importlib.abc
import json
import sys


class _BlockMarsSegformer(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "mars_segformer":
            raise ModuleNotFoundError(f"No module named {name!r} (blocked: fresh-process check)")


sys.meta_path.insert(0, _BlockMarsSegformer())

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from transformers import pipeline  # noqa: E402

try:
    import mars_segformer  # noqa: F401
    raise SystemExit("mars_segformer is importable; the check would prove nothing")
except ModuleNotFoundError:
    pass

images = np.load(sys.argv[1])
results = {}
for arg in sys.argv[2:]:
    model, _, remote = arg.partition(":")
    model, _, revision = model.partition("@")
    pipe = pipeline("image-segmentation", model=model, revision=revision or None, trust_remote_code=bool(remote))
    label2id = pipe.model.config.label2id
    maps = []
    for img in images:
        out = pipe(Image.fromarray(img))  # grayscale PIL image; the pipeline converts it to RGB
        label_map = np.full(img.shape, -1, np.int64)
        for seg in out:
            assert seg["mask"].size == (img.shape[1], img.shape[0]), seg["mask"].size
            label_map[np.asarray(seg["mask"]) > 0] = label2id[seg["label"]]
        maps.append(label_map.tolist())
    results[arg] = maps
print("RESULT" + json.dumps(results))
