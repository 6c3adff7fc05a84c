"""The package as a wheel: built from this checkout, installed in a fresh virtual environment (the
environment's other packages reused, so it stays fast), and used from an empty folder through the
``mars-segformer`` command: train on the embedded sample, render a card in a push dry run, predict a
PNG frame. Nothing of the checkout is on the path there."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

#: one xdist worker runs this module (`--dist loadgroup`), so its module-scoped fixtures are built once
pytestmark = pytest.mark.xdist_group(__name__)

ROOT = Path(__file__).resolve().parents[1]


def sh(cmd, cwd, env, timeout=600):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd}: {proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS="1", PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    # build from a copy, so setuptools' build/ and egg-info never land in the checkout
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", "bench", "docs", "tests", "build", "dist", "runs",
                                                             "*.egg-info", "__pycache__", ".*_cache"))
    sh([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp / "dist"),
        str(src)], tmp, env)
    wheel = next((tmp / "dist").glob("mars_segformer-*.whl"))
    sh([sys.executable, "-m", "venv", "--system-site-packages", str(tmp / "venv")], tmp, env)
    bin_dir = tmp / "venv" / "bin"
    sh([str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], tmp, env)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    empty = tmp / "empty"
    empty.mkdir()
    return bin_dir, empty, env


def test_the_wheel_install_is_the_one_imported(installed):
    bin_dir, empty, env = installed
    where = sh([str(bin_dir / "python"), "-c", "import mars_segformer; print(mars_segformer.__file__)"], empty, env)
    assert str(bin_dir.parent) in where and str(ROOT) not in where


def test_train_push_dry_run_and_predict_from_an_empty_folder(installed):
    bin_dir, empty, env = installed
    cmd = str(bin_dir / "mars-segformer")
    assert "push-dataset" in sh([cmd, "--help"], empty, env)
    out = sh([cmd, "train", "--tiny", "--max_steps", "2", "--output_dir", "run", "--eval_strategy", "no",
              "--save_strategy", "no", "--load_best_model_at_end", "false", "--report_to", "none",
              "--disable_tqdm", "true", "--logit_adjustment", "0"], empty, env)
    assert "embedded AI4Mars sample" in out and (empty / "run" / "model.safetensors").is_file()
    card = sh([cmd, "push", "run", "--repo_id", "user/mars-test", "--dry_run"], empty, env)
    # rendered from the template inside the wheel: its sections, with this run's metadata
    from huggingface_hub import ModelCard

    text = card.split("\nwould upload to", 1)[0]
    parsed = ModelCard(text)
    assert parsed.data.pipeline_tag == "image-segmentation" and parsed.data.eval_results
    assert "## Training recipe" in text and "user/mars-test" in text
    # a whole frame: one of the images the package ships for its demo
    frame = sh([str(bin_dir / "python"), "-c", "from mars_segformer.demo import EXAMPLES; print(EXAMPLES[0])"],
               empty, env).strip()
    assert str(bin_dir.parent) in frame
    sh([cmd, "predict", "--model", "run", "--images", frame, "--out", "pred"], empty, env)
    assert (empty / "pred" / f"{Path(frame).stem}_mask.png").is_file()
