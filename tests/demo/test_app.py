"""The Gradio demo, started on a local port and called through gradio_client as a Space user would."""

import importlib.util
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mars_segformer import create_model, make_image_processor

#: one xdist worker runs this module (`--dist loadgroup`), so its module-scoped fixtures are built once
pytestmark = pytest.mark.xdist_group(__name__)

# found, not imported: gradio takes seconds to import and every xdist worker collects this module, while only
# the worker that runs it needs gradio_client (the demo itself runs in its own process)
if importlib.util.find_spec("gradio") is None or importlib.util.find_spec("gradio_client") is None:
    pytest.skip("the demo is the optional extra [demo]", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo") / "model"
    torch.manual_seed(0)
    model = create_model("upernet-r18", tiny=True)
    model.config.tile_scale = 0.25
    model.save_pretrained(folder)
    make_image_processor().save_pretrained(folder)
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "demo" / "app.py"), "--model", str(folder), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={"GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "1",
                                 **{k: v for k, v in __import__("os").environ.items() if k != "MARS_MODEL"}})
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read()[-3000:]) from None
            time.sleep(0.5)
    else:
        proc.kill()
        raise AssertionError("the demo did not start within 180 s")
    yield url, folder
    proc.terminate()
    proc.wait(timeout=30)


def test_demo_segments_an_uploaded_frame(app, tmp_path):
    url, folder = app
    import gradio_client

    client = gradio_client.Client(url, verbose=False)
    example = ROOT / "mars_segformer" / "data" / "sample" / "examples" / "frame_256.png"
    overlay_path, shares = client.predict(gradio_client.handle_file(str(example)),
                                          "tiles' scale (a 256×256 frame, a 64×128 tile)", api_name="/predict")
    overlay = np.asarray(Image.open(overlay_path))
    assert overlay.shape[0] == 256 + 22  # the frame, then the legend strip
    confidences = {c["label"]: c["confidence"] for c in shares["confidences"]}
    assert set(confidences) == {"background", "soil", "bedrock", "sand", "big rock"}
    assert sum(confidences.values()) == pytest.approx(1.0, abs=1e-4)
    # the same numbers as the package's own whole-image prediction of that frame
    from mars_segformer.inference import load_model
    from mars_segformer.inference.frames import area_shares, predict_image

    expected = area_shares(predict_image(load_model(str(folder), "cpu"), np.asarray(Image.open(example).convert("L")), 0.25))
    assert confidences["big rock"] == pytest.approx(expected["big_rock"], abs=1e-6)
    assert confidences["soil"] == pytest.approx(expected["soil"], abs=1e-6)


def test_demo_bundles_real_examples():
    examples = sorted((ROOT / "mars_segformer" / "data" / "sample" / "examples").glob("*.png"))
    assert len(examples) >= 3
    sizes = {Image.open(p).size for p in examples}
    assert (256, 256) in sizes and (128, 64) in sizes  # a whole frame and single tiles


def test_screenshot_of_the_page_shows_a_prediction(app, tmp_path):
    """The page in a headless browser: the first example is segmented on opening (the README's picture is
    made the same way by demo/screenshot.py)."""
    pytest.importorskip("playwright", reason="screenshots need playwright (pip) and Chromium (apt: chromium)")
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.skip("no Chromium at /usr/bin/chromium (apt-get install chromium)")
    sys.path.insert(0, str(ROOT / "demo"))
    from screenshot import screenshot

    url, _ = app
    out = tmp_path / "page.png"
    screenshot(url, str(out), str(chromium))
    page = np.asarray(Image.open(out).convert("RGB"))
    assert page.shape[:2] == (860, 1280)
    # the legend's big-rock red, drawn only in the prediction panel, is on the page
    assert (np.abs(page.astype(int) - [220, 40, 40]).sum(-1) < 30).sum() > 20


def test_a_folder_that_holds_no_model_is_one_line(tmp_path, capsys):
    from mars_segformer.demo import main

    (tmp_path / "empty").mkdir()
    assert main(["--model", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and str(tmp_path / "empty") in lines[0] and "cannot load a segmentation model" in lines[0]
    assert "Traceback" not in err
