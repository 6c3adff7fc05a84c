"""Machine-dependent defaults and what can be checked of the GPU path on a CPU: mixed precision keeps the
loss, DataLoader workers change neither the rows of an epoch nor the validation score, torch.compile trains."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mars_segformer import create_model
from mars_segformer.data import DataConfig, build_dataset_dict, load_arrays
from mars_segformer.losses import build_loss
from mars_segformer.training.devices import GPU_EVAL_BATCH, GPU_PLOT_EVERY, device_defaults
from mars_segformer.training.run import _parse
from tests.training.test_train import launch


def parsed(argv):
    return _parse([*argv, "--output_dir", "unused"])[3]


@pytest.mark.parametrize("bf16", [True, False])
def test_gpu_defaults_and_explicit_flags_win(bf16):
    with_tf32 = device_defaults([], cuda=True, bf16_supported=bf16, cores=16, tf32_supported=True)
    assert with_tf32[with_tf32.index("--tf32") + 1] == "true"
    # (TrainingArguments refuses --tf32 without an Ampere GPU, so the parse below is of a pre-Ampere machine)
    flags = device_defaults([], cuda=True, bf16_supported=bf16, cores=16, tf32_supported=False)
    assert "--tf32" not in flags
    args = _parse([*flags, "--output_dir", "unused", "--use_cpu", "true"])[3]  # parse only; no GPU here
    assert (args.bf16, args.fp16) == ((True, False) if bf16 else (False, True))
    assert args.dataloader_num_workers == 8  # (pin memory is asked for, then turned off by --use_cpu here)
    assert flags[flags.index("--dataloader_pin_memory") + 1] == "true"
    assert args.dataloader_persistent_workers is True and args.dataloader_prefetch_factor == 4
    assert args.per_device_eval_batch_size == GPU_EVAL_BATCH
    assert args.plot_every == GPU_PLOT_EVERY > 1  # short GPU epochs: the grid every few evaluations
    # two cores: one worker beside the main process
    assert "--dataloader_num_workers" in (f := device_defaults([], cuda=True, bf16_supported=bf16, cores=2,
                                                               tf32_supported=False))
    assert f[f.index("--dataloader_num_workers") + 1] == "1"
    # whatever the user says wins, and asking for no workers drops the settings that need them
    user = ["--fp16", "false", "--bf16", "false", "--dataloader_num_workers", "0", "--tf32", "false"]
    defaults = device_defaults(user, cuda=True, bf16_supported=bf16, cores=16, tf32_supported=True)
    assert "--tf32" not in defaults and "--bf16" not in defaults and "--fp16" not in defaults
    args = _parse([*defaults, *user, "--output_dir", "u", "--use_cpu", "true"])[3]
    assert not args.bf16 and not args.fp16 and args.tf32 is False and args.dataloader_num_workers == 0
    assert not args.dataloader_persistent_workers and args.dataloader_prefetch_factor is None
    # no GPU, or --use_cpu: the CPU's rules (below), nothing of the GPU's
    assert device_defaults([], cuda=False, cpu_bf16=False) == []
    assert device_defaults(["--use_cpu", "true"], cuda=True, cpu_bf16=False) == []
    assert device_defaults(["--use_cpu"], cuda=True, cpu_bf16=False) == []


def test_cpu_defaults_bf16_only_where_the_cpu_has_it():
    assert device_defaults([], cuda=False, cpu_bf16=True) == ["--bf16", "true"]
    assert device_defaults(["--use_cpu"], cuda=True, cpu_bf16=True) == ["--bf16", "true"]
    assert device_defaults([], cuda=False, cpu_bf16=False) == []
    for user in (["--bf16", "false"], ["--fp16", "true"], ["--bf16=false"]):  # the user's choice wins
        assert device_defaults(user, cuda=False, cpu_bf16=True) == []
    assert parsed(device_defaults([], cuda=False, cpu_bf16=True)).bf16 is True
    assert parsed([*device_defaults([], cuda=False, cpu_bf16=True), "--bf16", "false"]).bf16 is False


def test_cpu_bf16_probe_matches_the_cpu_flags():
    """The probe against the kernel's own list of the CPU's instruction sets."""
    from mars_segformer.training.devices import cpu_has_bf16

    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        pytest.skip("no /proc/cpuinfo on this system")
    flags = set(next(line for line in text.splitlines() if line.startswith("flags")).split(":", 1)[1].split())
    # torch may be held below the CPU's AVX-512 kernels by ATEN_CPU_CAPABILITY (its values are lower case)
    avx512_kernels = os.environ.get("ATEN_CPU_CAPABILITY", "avx512").lower() == "avx512"
    assert cpu_has_bf16() == (bool({"avx512_bf16", "amx_bf16"} & flags) and avx512_kernels)


def test_cpu_bf16_probe_is_off_with_avx2_kernels():
    """With torch's kernels held to AVX2 (as on an AVX2-only CPU) bf16 autocast is the slow path: the probe says no,
    whatever the CPU's flags, and torch reports a capability below AVX-512."""
    code = ("import torch; from mars_segformer.training.devices import cpu_has_bf16; "
            "print(torch.backends.cpu.get_cpu_capability(), cpu_has_bf16())")
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    capability, probe = out.split()
    assert capability != "AVX512" and probe == "False"


def test_bf16_autocast_keeps_the_loss():
    """The forward pass in bf16 (as on a GPU with --bf16), the loss in float32: within 2 % of the float32 loss."""
    torch.manual_seed(0)
    model = create_model("upernet-r18", tiny=True).eval()
    a = load_arrays()
    x = ((torch.from_numpy(a.train_images[:8]).float() / 255 - 0.235) / 0.1)[:, None].expand(-1, 3, -1, -1)
    y = torch.from_numpy(a.train_masks[:8]).long()
    loss = build_loss("focal:1,dice:1", class_weights=[0, 1, 1, 2, 8])
    with torch.no_grad():
        ref = loss(model(pixel_values=x).logits, y)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(pixel_values=x).logits
        assert logits.dtype == torch.bfloat16
        got = loss(logits, y)
    assert got.dtype == torch.float32
    assert abs(got.item() - ref.item()) < 0.02 * ref.item()


def _trainer(workers: int, data, extra=()):
    from mars_segformer.training.trainer import MarsTrainer, StreamingMetrics, argmax_at_label_size

    args = parsed(["--dataloader_num_workers", str(workers), "--per_device_train_batch_size", "16",
                   "--per_device_eval_batch_size", "16", "--report_to", "none", "--seed", "5", "--bf16", "false",
                   *extra])
    torch.manual_seed(0)
    model = create_model("unet", tiny=True)
    metrics = StreamingMetrics(5, 0, ["background", "soil", "bedrock", "sand", "big_rock"])
    return MarsTrainer(model=model, args=args, train_dataset=data.datasets["train"],
                       eval_dataset=data.datasets["validation"], compute_metrics=metrics,
                       preprocess_logits_for_metrics=argmax_at_label_size)


def test_workers_give_the_same_rows_and_the_same_score():
    data = build_dataset_dict(load_arrays(), DataConfig(augmentations=[], seed=5))

    def epoch_rows(workers):
        rows = []
        for batch in _trainer(workers, data).get_train_dataloader():
            for img, lab in zip(batch["pixel_values"], batch["labels"], strict=True):
                rows.append(hashlib.sha1(img.numpy().tobytes() + lab.numpy().tobytes()).hexdigest())
        return sorted(rows)

    zero, two = epoch_rows(0), epoch_rows(2)
    assert len(zero) == len(data.datasets["train"]) and zero == two
    scores = [_trainer(w, data).evaluate()["eval_task_mean_iou"] for w in (0, 2)]
    assert scores[0] == scores[1] and np.isfinite(scores[0])


def test_evaluation_is_float32_under_bf16_training():
    """A run training in bf16 scores its model in float32: the score equals a float32 trainer's on the same
    weights, and the mixed-precision forward is back in place for training afterwards."""
    data = build_dataset_dict(load_arrays(), DataConfig(augmentations=[], seed=5))
    fp32 = _trainer(0, data)
    bf16 = _trainer(0, data, ["--bf16", "true"])
    bf16.model.load_state_dict(fp32.model.state_dict())
    want = fp32.evaluate()
    got = bf16.evaluate()
    assert "_original_forward" in bf16.model.__dict__  # accelerate wrapped the forward in autocast
    assert bf16.model.forward is not bf16.model.__dict__["_original_forward"]  # and it is back after evaluating
    with torch.no_grad():
        out = bf16.model(pixel_values=torch.zeros(1, 3, 64, 128))
    assert out.logits.dtype == torch.float32  # (the wrapper returns float32 outputs)
    for key in ("eval_task_mean_iou", "eval_iou_soil", "eval_iou_big_rock", "eval_overall_accuracy"):
        assert got[key] == want[key], key


def test_workers_draw_their_own_augmentation():
    """Two workers over copies of one tile: with their own seeds, their horizontal flips differ."""
    a = load_arrays()
    tile = a.train_images[:1].repeat(64, axis=0)
    from mars_segformer.data.dataset import MarsTransform, build_augmentation, tiles_to_dataset

    ds = tiles_to_dataset(tile, a.train_masks[:1].repeat(64, axis=0))
    ds.set_transform(MarsTransform(build_augmentation(["hflip"], seed=1)))
    loader = torch.utils.data.DataLoader(ds, batch_size=32, num_workers=2, shuffle=False)
    first, second = (b["pixel_values"][:, 0, 0, 0] for b in loader)  # batch k comes from worker k
    assert not torch.equal(first, second)


def test_torch_compile_trains_a_step(tmp_path):
    """``--torch_compile true`` through the Trainer: Dynamo traces the model's forward and AOTAutograd its backward
    (the graphs inductor would be given), a step trains and the saved weights are the plain model's. With the
    ``aot_eager`` backend: inductor's C++ code generation for this one step took 51 s of the suite's ~290 s of wall
    time on 2 cores (``bench/results/suite_time_amd_avx512_bf16_bc8ca01.json``; this whole module takes 12 s with
    ``aot_eager``, ``..._920d757.json``; docs/results.md); inductor's speed is ``bench/cpu_speed.py``'s."""
    proc = launch(["--max_steps", "1", "--eval_strategy", "no", "--save_strategy", "no",
                   "--load_best_model_at_end", "false", "--report_to", "none", "--torch_compile", "true",
                   "--torch_compile_backend", "aot_eager"], tmp_path / "run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    start = next(line for line in proc.stdout.splitlines() if "| device: " in line)  # the start-up line says so
    assert "torch.compile (aot_eager)" in start.split("| device: ")[1]
    saved = load_file(tmp_path / "run" / "model.safetensors")
    fresh = create_model("unet", tiny=True).state_dict()
    assert set(saved) == set(fresh)  # the plain model's names, not the compiled wrapper's (_orig_mod.)


def test_channels_last_default_follows_the_measurement():
    from mars_segformer.training.devices import use_channels_last

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    upernet, segformer = create_model("upernet-r18", tiny=True), create_model("segformer-b0", tiny=True)
    assert use_channels_last("auto", upernet, cpu) and not use_channels_last("auto", segformer, cpu)
    # on CUDA: as bench/gpu_speed.py measured it on a GPU, at the recipes' batch of 32
    speed = json.loads((Path(__file__).resolve().parents[2] / "bench" / "results" / "gpu_speed.json").read_text())

    def faster(model):
        rate = {r["channels_last"]: r["samples_per_s"] for r in speed["rows"] if r["model"] == model and r["batch"] == 32}
        return rate[True] > rate[False]

    assert use_channels_last("auto", upernet, cuda) == faster("upernet-r18")
    assert use_channels_last("auto", segformer, cuda) == faster("segformer-b0")
    assert use_channels_last("true", segformer, cpu) and not use_channels_last("false", upernet, cpu)
    # --tiny models keep standard weights unless asked (a tiny channels-last UperNet on 2 threads broke the heap)
    assert not use_channels_last("auto", upernet, cpu, tiny=True) and use_channels_last("true", upernet, cpu, tiny=True)


def test_channels_last_computes_what_the_plain_layout_computes():
    """The same weights in either memory format: the same logits and gradients. In float64, so that the other
    convolution kernels channels-last takes (other summation orders) differ far below the tolerance; in float32
    their gradients differ by up to ~1e-3 relative on some CPUs."""
    torch.manual_seed(0)
    plain = create_model("upernet-r18", tiny=True).train().double()
    last = create_model("upernet-r18", tiny=True).train().double()
    last.load_state_dict(plain.state_dict())
    last.to(memory_format=torch.channels_last)
    x = torch.randn(4, 3, 64, 128, dtype=torch.float64)
    la, lb = plain(pixel_values=x).logits, last(pixel_values=x).logits
    torch.testing.assert_close(la, lb, rtol=1e-4, atol=1e-5)
    la.square().mean().backward()
    lb.square().mean().backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), last.named_parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-3, atol=1e-6, msg=name)


def test_channels_last_run_saves_an_ordinary_model(tmp_path):
    """A CPU UperNet run with channels-last weights (the default at full size; asked for here, as a --tiny run
    keeps standard weights by default) says so; its saved model loads in plain transformers with contiguous
    tensors and gives the run's own validation score."""
    from transformers import AutoModelForSemanticSegmentation

    from tests.training.test_train import independent_task_iou

    out = tmp_path / "run"
    proc = launch(["--model", "upernet-r18", "--max_steps", "3", "--eval_strategy", "steps", "--eval_steps", "3",
                   "--save_strategy", "steps", "--save_steps", "3", "--report_to", "none", "--channels_last", "true"], out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "channels-last weights" in proc.stdout
    m = json.loads((out / "metrics.json").read_text())
    assert m["channels_last"] is True
    # bf16 autocast by default exactly where the CPU has bf16 instructions, and said so
    from mars_segformer.training.devices import cpu_has_bf16

    assert m["training_precision"] == ("bf16" if cpu_has_bf16() else "fp32")
    assert ("bf16 autocast" in proc.stdout) == cpu_has_bf16()
    model = AutoModelForSemanticSegmentation.from_pretrained(out)
    assert all(t.is_contiguous() for t in model.state_dict().values())
    # the saved (plain-layout) model scores what the channels-last one scored in training (argmax ties aside)
    assert independent_task_iou(out) == pytest.approx(m["validation"]["task_mean_iou"], abs=2e-3)


@pytest.fixture
def fresh_accelerator_state():
    """accelerate keeps one process-wide state: a Trainer run earlier in this worker fixed its precision, and a
    bf16 ``Accelerator`` would be refused. Start from none and leave none behind."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def test_float32_forward_takes_the_autocast_wrapper_off_and_back(fresh_accelerator_state):
    """On a model accelerate prepared for bf16: the model's logits inside ``float32_forward`` are the float32
    model's exactly (the tau search and the preview plots read them), and outside it they are bf16-computed."""
    from accelerate import Accelerator

    from mars_segformer.inference.predictor import tile_logits
    from mars_segformer.training.devices import float32_forward

    torch.manual_seed(0)
    ref = create_model("upernet-r18", tiny=True).eval()
    model = create_model("upernet-r18", tiny=True).eval()
    model.load_state_dict(ref.state_dict())
    model = Accelerator(cpu=True, mixed_precision="bf16").prepare_model(model, evaluation_mode=True)
    images = load_arrays().train_images[:6]
    want = tile_logits(ref, images)
    with float32_forward(model):
        assert torch.equal(tile_logits(model, images), want)
    assert not torch.equal(tile_logits(model, images), want)  # the wrapper is back: bf16 autocast again
    with float32_forward(ref):  # a model without the wrapper is left as it is
        assert torch.equal(tile_logits(ref, images), want)
