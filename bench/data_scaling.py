"""Cost as the data grows: the shared file at 1x, 4x and 16x its size (tiles repeated under new frame
ids), each loaded and built into the training DatasetDict in a fresh process.

    python bench/data_scaling.py --scales 1 4 16

Per scale: the raw tile bytes, load time and the peak memory it adds (VmHWM over the process's
baseline after imports), build time and the peak memory ``build_dataset_dict`` adds on top, and
training-read throughput (batches of 32 through the train split's transform). Saves
``bench/results/data_scaling.json``, ``docs/data_scaling.md`` and ``docs/data_scaling.png``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import machine, save  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "ai4mars_msl_64x128.npz"

CHILD = r"""
import json, os, sys, time
import numpy as np
def mb(key):
    return int(open(f"/proc/{os.getpid()}/status").read().split(key + ":")[1].split()[0]) / 1024
from mars_segformer.data import DataConfig, build_dataset_dict, load_arrays
base = mb("VmRSS")
t0 = time.perf_counter(); arrays = load_arrays(sys.argv[1]); t1 = time.perf_counter()
after_load = mb("VmHWM")
rss_loaded = mb("VmRSS")
data = build_dataset_dict(arrays, DataConfig()); t2 = time.perf_counter()
after_build = mb("VmHWM")
train = data.datasets["train"]
rng = np.random.default_rng(0)
t3 = time.perf_counter(); n = 0
while time.perf_counter() - t3 < 5:
    train[rng.choice(len(train), 32, replace=False).tolist()]; n += 32
reads = n / (time.perf_counter() - t3)
raw = (arrays.train_images.nbytes + arrays.train_masks.nbytes + arrays.test_images.nbytes) / 1e6
print("RESULT" + json.dumps({"tiles": len(arrays) + len(arrays.test_images), "raw_mb": raw,
      "load_s": t1 - t0, "load_peak_mb": after_load - base, "build_s": t2 - t1,
      "build_peak_mb": after_build - max(after_load, rss_loaded), "train_reads_per_s": reads}))
"""


def scaled_file(src: Path, k: int, folder: Path) -> Path:
    """The shared file with every tile repeated ``k`` times, copy j under frame id ``<id>~j``."""
    import numpy as np

    if k == 1:
        return src
    with np.load(src) as f:
        arrays = {key: f[key] for key in f.files}
    out = {}
    for key, value in arrays.items():
        if key.endswith("frame_ids"):
            out[key] = np.concatenate([np.char.add(value.astype(str), f"~{j}") for j in range(k)])
        else:
            out[key] = np.concatenate([value] * k)
    path = folder / f"x{k}.npz"
    np.savez(path, **out)
    return path


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(SHARED))
    p.add_argument("--scales", type=int, nargs="+", default=[1, 4, 16])
    args = p.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        for k in args.scales:
            path = scaled_file(Path(args.data), k, Path(tmp))
            proc = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, cwd=ROOT)
            if proc.returncode != 0:
                raise SystemExit(proc.stderr[-3000:])
            r = json.loads(proc.stdout.split("RESULT", 1)[1])
            r["build_peak_x_raw"] = r["build_peak_mb"] / r["raw_mb"]
            rows[f"x{k}"] = {key: round(v, 3) if isinstance(v, float) else v for key, v in r.items()}
            print(f"x{k}: {r['tiles']} tiles, raw {r['raw_mb']:.0f} MB; load {r['load_s']:.1f} s (+{r['load_peak_mb']:.0f} MB "
                  f"peak); build {r['build_s']:.1f} s (+{r['build_peak_mb']:.0f} MB peak, {r['build_peak_x_raw']:.2f}x raw); "
                  f"{r['train_reads_per_s']:.0f} training reads/s", flush=True)
            path.unlink() if k != 1 else None
    m = machine()
    save("data_scaling", {"machine": m, "rows": rows})
    render(rows, m)


def render(rows: dict, m: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = list(rows)
    raw = [rows[k]["raw_mb"] for k in ks]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(raw, [rows[k]["load_peak_mb"] for k in ks], "o-", label="load (peak added)")
    ax.plot(raw, [rows[k]["build_peak_mb"] for k in ks], "s-", label="build_dataset_dict (peak added)")
    ax.plot(raw, raw, "k:", label="1x the raw tiles")
    ax.set_xlabel("raw tiles (MB)")
    ax.set_ylabel("memory (MB)")
    ax.set_title(f"data scaling ({m['cpu']}, {m['cpu_capability']})", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "data_scaling.png", dpi=110)
    lines = [f"`python bench/data_scaling.py --scales {' '.join(k[1:] for k in ks)}` on {m['cpu']} "
             f"({m['cpu_capability']}, {m['cores']} cores): each scale in a fresh process.", "",
             "| scale | tiles | raw MB | load s | load peak +MB | build s | build peak +MB | build / raw | training reads/s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for k in ks:
        r = rows[k]
        lines.append(f"| {k} | {r['tiles']:,} | {r['raw_mb']:.0f} | {r['load_s']:.1f} | {r['load_peak_mb']:.0f} | "
                     f"{r['build_s']:.1f} | {r['build_peak_mb']:.0f} | {r['build_peak_x_raw']:.2f}x | "
                     f"{r['train_reads_per_s']:.0f} |")
    (ROOT / "docs" / "data_scaling.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
