"""Mars terrain segmentation demo: upload a rover image (or pick a bundled real one), see the classes.

    mars-segformer demo --model user/mars-upernet              # a Hub repo id or a run folder
    MARS_MODEL=runs/mars-segformer python demo/app.py --port 7860   # the Space-ready wrapper of this module

Needs the optional extra ``[demo]`` (gradio). The bundled example images ship inside the package
(``data/sample/examples``).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np

from .argparsing import ArgumentParser
from .data.io import CLASS_NAMES, TILE_SCALE
from .inference.options import PredictError

EXAMPLES = sorted(str(p) for p in (Path(__file__).resolve().parent / "data" / "sample" / "examples").glob("*.png"))
SCALES = {"tiles' scale (a 256×256 frame, a 64×128 tile)": TILE_SCALE, "native NAVCAM frame (1024×1024)": 1.0}


def build(model_name: str):
    """The app (a ``gradio.Blocks``) for one model (a Hub repo id or a folder); the model is loaded once."""
    from .inference.frames import area_shares, overlay_with_legend, predict_image
    from .inference.predictor import load_model

    # the model first: a wrong --model is answered before gradio's long import
    model = load_model(model_name, trust_remote_code=bool(os.environ.get("MARS_TRUST_REMOTE_CODE")))
    import gradio as gr

    def segment(image: np.ndarray | None, scale_name: str):
        if image is None:
            raise gr.Error("Upload an image or pick an example first.")
        gray = image if image.ndim == 2 else (image[..., :3] @ np.array([0.299, 0.587, 0.114])).round().astype(np.uint8)
        mask = predict_image(model, gray.astype(np.uint8), SCALES[scale_name])
        shares = area_shares(mask)
        return overlay_with_legend(gray.astype(np.uint8), mask), {n.replace("_", " "): shares[n] for n in CLASS_NAMES}

    with gr.Blocks(title="Mars terrain segmentation") as demo:
        gr.Markdown("# Mars terrain segmentation\nCuriosity NAVCAM images → soil, bedrock, sand, big rock "
                    f"(model: `{model_name}`). Whole frames are cut into overlapping 64×128 windows and blended.")
        with gr.Row():
            with gr.Column():
                image = gr.Image(label="rover image (gray or RGB, any size)", type="numpy",
                                 value=EXAMPLES[0] if EXAMPLES else None)
                scale = gr.Radio(list(SCALES), value=next(iter(SCALES)), label="the image's pixel scale")
                button = gr.Button("Segment", variant="primary")
            with gr.Column():
                result = gr.Image(label="classes over the image (legend below)", type="numpy")
                shares = gr.Label(label="area share per class", num_top_classes=len(CLASS_NAMES))
        gr.Examples(EXAMPLES, inputs=image, label="real AI4Mars images (a whole frame, two tiles)")
        button.click(segment, [image, scale], [result, shares], api_name="predict")
        demo.load(segment, [image, scale], [result, shares])  # the first example, segmented on opening
    return demo


def main(argv=None) -> int:
    p = ArgumentParser(prog="mars-segformer demo", description=__doc__.splitlines()[0])
    p.add_argument("--model", default=os.environ.get("MARS_MODEL"), help="Hub repo id or run folder (env MARS_MODEL)")
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", 7860)))
    p.add_argument("--host", default="127.0.0.1")
    args = p.parse_args(argv)
    if not args.model:
        p.error("--model (or the environment variable MARS_MODEL) is required: a Hub repo id or a run folder")
    if importlib.util.find_spec("gradio") is None:
        print("error: the demo needs gradio: pip install 'mars-segformer[demo]'", file=sys.stderr)
        return 2
    try:
        app = build(args.model)
    except PredictError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    app.launch(server_name=args.host, server_port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
