"""Cost as the data grows: the shared file at 1x, 4x and 16x its size (tiles repeated under new frame
ids), each loaded and built into the training DatasetDict in a fresh process.

    python bench/data_scaling.py --scales 1 4 16
    python bench/data_scaling.py --scales 1 16 --mapped    # the memory-mapped path (files larger than memory)

Per scale: the raw tile bytes, load time and the peak memory it adds (VmHWM over the process's
baseline after imports), build time and the peak memory ``build_dataset_dict`` adds on top (and the
anonymous memory, ``RssAnon``, each stage leaves: memory-mapped tiles the build has read count in the
peak as file pages the system can drop, not here), and
training-read throughput (batches of 32 through the train split's transform). Saves
``bench/results/data_scaling.json``, ``docs/data_scaling.md`` and ``docs/data_scaling.png``. With
``--mapped`` the loader takes the memory-mapped path (``MARS_SEGFORMER_MAP_ABOVE_MB=0``, a fresh cache
folder; its load time includes the one-off extraction to the cache) and the rows are ``xK mapped``;
rows of other runs are kept, each with the machine it was measured on.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import RESULTS, SHARED_DATA, machine, save  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402

CHILD = r"""
import json, os, sys, time
import numpy as np
def mb(key):
    return int(open(f"/proc/{os.getpid()}/status").read().split(key + ":")[1].split()[0]) / 1024
from mars_segformer.data import DataConfig, build_dataset_dict, load_arrays
base = mb("VmRSS")
anon_base = mb("RssAnon")
t0 = time.perf_counter(); arrays = load_arrays(sys.argv[1]); t1 = time.perf_counter()
after_load = mb("VmHWM")
rss_loaded = mb("VmRSS")
anon_base_loaded = mb("RssAnon")
data = build_dataset_dict(arrays, DataConfig()); t2 = time.perf_counter()
after_build = mb("VmHWM")
anon_built = mb("RssAnon")
train = data.datasets["train"]
rng = np.random.default_rng(0)
t3 = time.perf_counter(); n = 0
while time.perf_counter() - t3 < 5:
    train[rng.choice(len(train), 32, replace=False).tolist()]; n += 32
reads = n / (time.perf_counter() - t3)
raw = (arrays.train_images.nbytes + arrays.train_masks.nbytes + arrays.test_images.nbytes) / 1e6
print("RESULT" + json.dumps({"tiles": len(arrays) + len(arrays.test_images), "raw_mb": raw,
      "load_s": t1 - t0, "load_peak_mb": after_load - base, "build_s": t2 - t1,
      "build_peak_mb": after_build - max(after_load, rss_loaded), "train_reads_per_s": reads,
      "load_anon_mb": anon_base_loaded - anon_base, "build_anon_mb": anon_built - anon_base_loaded}))
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
    import os

    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(SHARED_DATA))
    p.add_argument("--scales", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--mapped", action="store_true", help="measure the memory-mapped path")
    args = p.parse_args()
    previous = RESULTS / "data_scaling.json"
    rows = {}
    if previous.exists():
        old = json.loads(previous.read_text())
        rows = {k: {**r, "measured_on": r.get("measured_on") or old["machine"]} for k, r in old["rows"].items()}
    m = machine()
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        env = {**os.environ, **({"MARS_SEGFORMER_MAP_ABOVE_MB": "0", "MARS_SEGFORMER_CACHE": str(Path(tmp) / "cache")}
                                if args.mapped else {"MARS_SEGFORMER_MAP_ABOVE_MB": str(1 << 30)})}
        for k in args.scales:
            path = scaled_file(Path(args.data), k, Path(tmp))
            proc = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, cwd=ROOT,
                                  env=env)
            if proc.returncode != 0:
                raise SystemExit(proc.stderr[-3000:])
            r = json.loads(proc.stdout.split("RESULT", 1)[1])
            r["build_peak_x_raw"] = r["build_peak_mb"] / r["raw_mb"]
            name = f"x{k} mapped" if args.mapped else f"x{k}"
            rows[name] = {**{key: round(v, 3) if isinstance(v, float) else v for key, v in r.items()}, "measured_on": m}
            print(f"{name}: {r['tiles']} tiles, raw {r['raw_mb']:.0f} MB; load {r['load_s']:.1f} s (+{r['load_peak_mb']:.0f} MB "
                  f"peak); build {r['build_s']:.1f} s (+{r['build_peak_mb']:.0f} MB peak, {r['build_peak_x_raw']:.2f}x raw); "
                  f"{r['train_reads_per_s']:.0f} training reads/s", flush=True)
            path.unlink() if k != 1 else None
    save("data_scaling", {"machine": m, "rows": rows})
    render(rows, m)


def render(rows: dict, m: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = list(rows)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for tag, style in (("", "-"), (" mapped", "--")):
        kk = [k for k in ks if k.endswith(tag) and (tag or not k.endswith(" mapped"))]
        if not kk:
            continue
        raw = [rows[k]["raw_mb"] for k in kk]
        ax.plot(raw, [rows[k]["load_peak_mb"] for k in kk], "o" + style, label=f"load{tag} (peak added)")
        ax.plot(raw, [rows[k]["build_peak_mb"] for k in kk], "s" + style, label=f"build_dataset_dict{tag} (peak added)")
    raw = sorted({rows[k]["raw_mb"] for k in ks})
    ax.plot(raw, raw, "k:", label="1x the raw tiles")
    ax.set_xlabel("raw tiles (MB)")
    ax.set_ylabel("memory (MB)")
    ax.set_title(f"data scaling ({m['cpu']}, {m['cpu_capability']})", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "data_scaling.png", dpi=110)
    lines = ["`python bench/data_scaling.py --scales 1 4 16` (in memory) and `... --scales 1 16 --mapped` (the "
             "memory-mapped path; its load includes the one-off extraction to the cache): each scale in a fresh "
             "process; the machine of each row in its last column.", "",
             "| scale | tiles | raw MB | load s | load peak +MB | build s | build peak +MB | build / raw | training reads/s | machine |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for k in ks:
        r = rows[k]
        lines.append(f"| {k} | {r['tiles']:,} | {r['raw_mb']:.0f} | {r['load_s']:.1f} | {r['load_peak_mb']:.0f} | "
                     f"{r['build_s']:.1f} | {r['build_peak_mb']:.0f} | {r['build_peak_x_raw']:.2f}x | "
                     f"{r['train_reads_per_s']:.0f} | {r['measured_on']['cpu']} ({r['measured_on']['cpu_capability']}) |")
    (ROOT / "docs" / "data_scaling.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
