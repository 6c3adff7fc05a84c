"""The README's two set-up commands, timed from a fresh clone, as a user meets them.

    python bench/setup_commands.py                 # both commands; about 3 + 8 minutes on 2 cores
    python bench/setup_commands.py --only main
    python bench/setup_commands.py --out setup_commands_amd_avx2   # another machine's record beside the first

Clones this checkout's HEAD into a temporary folder outside the repository (so there is no
``../shared``, as in a user's clone), then runs, each in that clone with ``bash -c``:

- main: ``pip install -e . && accelerate launch train_hf.py`` (wall time, the validation scores from
  the run folder's ``metrics.json``);
- tests: ``pip install -e ".[dev]" && python -m pytest -q -n auto`` (wall time, pytest's summary line).

Nothing else should run meanwhile: the times are only comparable on an idle machine. The editable
install is pointed back at this checkout afterwards. Saves ``bench/results/setup_commands.json``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import RESULTS, machine, result_name, save  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402

NAMES = ("main", "tests")


def readme_commands() -> dict[str, str]:
    """The two commands as the README writes them (the timed strings must be the documented ones)."""
    blocks = re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S)
    return {"main": blocks[0].strip(), "tests": blocks[1].strip()}


def run_in(clone: Path, command: str, log: Path) -> tuple[float, int, str]:
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.run(["bash", "-c", command], cwd=clone, stdout=f, stderr=subprocess.STDOUT, text=True)
    return time.perf_counter() - t0, proc.returncode, log.read_text()


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=NAMES, nargs="+", default=list(NAMES))
    p.add_argument("--out", type=result_name, default="setup_commands", help="results name (bench/results/NAME.json), e.g. per machine")
    args = p.parse_args()
    documented = readme_commands()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    stored = RESULTS / f"{args.out}.json"
    result = json.loads(stored.read_text()) if stored.exists() else {}
    result.update(machine=machine(), commit=head)
    rows = result.setdefault("rows", {})
    try:
        with tempfile.TemporaryDirectory(prefix="fresh-clone-") as tmp:
            clone = Path(tmp) / "mars-segformer"
            subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
            for name in args.only:
                command = documented[name]
                print(f"[setup] {name}: {command}", flush=True)
                seconds, code, text = run_in(clone, command, Path(tmp) / f"{name}.log")
                row = {"command": command, "seconds": round(seconds, 1), "exit_code": code, "commit": head}
                if name == "main":
                    metrics = clone / "runs" / "mars-segformer" / "metrics.json"
                    if metrics.exists():
                        m = json.loads(metrics.read_text())
                        keys = ("task_mean_iou", "iou_soil", "iou_bedrock", "iou_sand", "iou_big_rock")
                        row["validation"] = {k: round(m["validation"][k], 3) for k in keys}
                        if m.get("validation_frame_context"):  # the tiles inside their frames, beside the above
                            c = m["validation_frame_context"]
                            row["validation_frame_context"] = {**{k: round(c[k], 3) for k in keys},
                                                               "tiles_in_frames": c["tiles_in_frames"]}
                    size = re.findall(r"run folder: .*\(([\d.]+) MB\)", text)
                    row["run_folder_mb"] = float(size[-1]) if size else None
                else:
                    summary = [ln for ln in text.splitlines() if re.search(r"\d+ passed", ln)]
                    row["summary"] = summary[-1].strip("= ") if summary else text[-500:]
                if code != 0:
                    row["log_tail"] = text[-2000:]
                rows[name] = row
                print(f"[setup] {name}: exit {code} in {seconds / 60:.1f} min", flush=True)
    finally:  # the editable install pointed into the deleted clone: point it back here
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", str(ROOT)], check=False)
    save(args.out, result)


if __name__ == "__main__":
    main()
