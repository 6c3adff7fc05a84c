"""Defaults that depend on the machine: a GPU run gets mixed precision, TF32 and DataLoader workers
without asking; a flag the user gives always wins.

On a CUDA GPU (and not ``--use_cpu``):

| setting | default | why |
|---|---|---|
| ``--bf16`` / ``--fp16`` | bf16 where the GPU supports it, else fp16 | the loss is computed in float32 either way (every loss casts the logits), so focal and Dice keep the rare classes |
| ``--tf32`` | true | float32 matmuls and convolutions on tensor cores |
| ``--dataloader_num_workers`` | cores - 1, at most 8 | one process reads ~3,000 augmented tiles/s (bench/data_throughput.py); the GPU trains several times that |
| ``--dataloader_pin_memory``, ``--dataloader_persistent_workers`` | true | no per-epoch worker start-up, faster host-to-device copies |
| ``--dataloader_prefetch_factor`` | 4 | |
| ``--per_device_eval_batch_size`` | 512 | evaluation must not dominate short epochs |

On a CPU (the threads are ``training/threads.py``'s business):

| setting | default | why |
|---|---|---|
| ``--bf16`` | true where the CPU has bf16 instructions (AVX512-BF16 or AMX), else false | ``bench/cpu_speed.py``: UperNet-R18 trains 1.7-1.8x faster than in float32 (with channels-last weights) on an AMD EPYC with AVX512-BF16 and on an Intel Xeon with AMX; without them bf16 is emulated: 11-18x slower with AVX2 kernels |

Evaluation runs in float32 whatever the training precision (``MarsTrainer.prediction_step``), so a run's scores
are what ``pipeline`` gives.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from .flags import flag_value, given_flags
from .threads import available_cores

GPU_EVAL_BATCH = 512
#: on a GPU an epoch of the shared file takes seconds: the prediction grid every 5th evaluation (and best, last)
GPU_PLOT_EVERY = 5
MAX_WORKERS = 8


def _flag_true(argv: list[str], name: str) -> bool:
    value = flag_value(argv, name)
    return value is not None and value.lower() in ("true", "1", "yes")


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX tiles) and torch dispatches to its AVX-512
    kernels, where bf16 autocast pays. With the kernels held to AVX2 (``ATEN_CPU_CAPABILITY=avx2``, as on an
    AVX2-only CPU) bf16 autocast trained at 0.06x float32's speed (docs/results.md, "bf16 autocast on the CPU")."""
    if torch.backends.cpu.get_cpu_capability() != "AVX512":
        return False
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def device_defaults(argv: list[str], cuda: bool | None = None, bf16_supported: bool | None = None,
                    cores: int | None = None, tf32_supported: bool | None = None,
                    cpu_bf16: bool | None = None) -> list[str]:
    """Flags to put *before* the user's (so theirs win) for the machine this process runs on.

    Args:
        argv: the user's flags.
        cuda, bf16_supported, cores, tf32_supported, cpu_bf16: the machine (default: this one's), for tests.
    """
    cuda = torch.cuda.is_available() if cuda is None else cuda
    if not cuda or _flag_true(argv, "use_cpu"):
        cpu_bf16 = cpu_has_bf16() if cpu_bf16 is None else cpu_bf16
        return ["--bf16", "true"] if cpu_bf16 and not {"bf16", "fp16"} & given_flags(argv) else []
    bf16_supported = torch.cuda.is_bf16_supported() if bf16_supported is None else bf16_supported
    if tf32_supported is None:  # Ampere (compute capability 8) and newer; TrainingArguments refuses it elsewhere
        tf32_supported = torch.cuda.get_device_capability()[0] >= 8
    cores = available_cores() if cores is None else cores
    given = given_flags(argv)
    out: list[str] = []
    if not {"bf16", "fp16"} & given:
        out += ["--bf16", "true"] if bf16_supported else ["--fp16", "true"]
    defaults = {**({"tf32": "true"} if tf32_supported else {}), "dataloader_num_workers": str(max(1, min(MAX_WORKERS, cores - 1))),
                "dataloader_pin_memory": "true", "per_device_eval_batch_size": str(GPU_EVAL_BATCH),
                "plot_every": str(GPU_PLOT_EVERY)}
    if "dataloader_num_workers" not in given or flag_value(argv, "dataloader_num_workers") not in ("0", None):
        # persistent workers and prefetching need workers
        defaults.update(dataloader_persistent_workers="true", dataloader_prefetch_factor="4")
    for name, value in defaults.items():
        if name not in given:
            out += [f"--{name}", value]
    return out


#: architectures whose training was measured faster with channels-last weights, per device type: on the CPU by
#: ``bench/cpu_speed.py`` (UperNet-R18: 1.12x on an Intel Xeon, 1.39x on an AMD EPYC, both AVX-512; 1.30x with
#: AVX2 kernels), on CUDA by ``bench/gpu_speed.py`` (UperNet-R18 on an NVIDIA H200, bf16: 1.16x at batch 32, 6.4x
#: at 256; SegFormer-b0 0.95x at 32, so not it)
CHANNELS_LAST = {"cpu": ("UperNetForSemanticSegmentation",), "cuda": ("UperNetForSemanticSegmentation",)}


def use_channels_last(choice: str, model, device, tiny: bool = False) -> bool:
    """``--channels_last``: ``true`` / ``false`` as given; ``auto`` for the architectures measured faster on
    the run's device type, at full size. Not for ``--tiny`` models: their speed was never the point, and a
    tiny UperNet with channels-last weights training on 2 CPU threads corrupted the heap (torch 2.14.1, AMD
    EPYC AVX512: "free(): invalid next size", 3 runs of 3; none with standard weights or 1 thread)."""
    if choice in ("true", "false"):
        return choice == "true"
    return not tiny and type(model).__name__ in CHANNELS_LAST.get(device.type, ())


@contextmanager
def float32_forward(model: torch.nn.Module):
    """The model's own ``forward`` for the duration: accelerate's mixed-precision wrapper (autocast around the
    forward, kept as an instance attribute beside ``_original_forward``) taken off and put back."""
    wrapped, original = model.__dict__.get("forward"), model.__dict__.get("_original_forward")
    if wrapped is None or original is None:
        yield
        return
    model.forward = original
    try:
        yield
    finally:
        model.forward = wrapped


def training_precision(args) -> str:
    """``bf16``, ``fp16`` or ``fp32``: what the run's training steps compute in."""
    return "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"


def describe(args) -> str:
    """The start-up line's device part: precision, TF32, loader workers and ``torch.compile`` as the run uses them."""
    compiled = f", torch.compile ({args.torch_compile_backend})" if args.torch_compile else ""
    if args.device.type != "cuda":
        return f"{args.device.type}{', bf16 autocast' if args.bf16 else ''}{compiled}"
    name = torch.cuda.get_device_name(args.device)
    return (f"cuda ({name}), {training_precision(args)}{', tf32' if args.tf32 else ''}, {args.dataloader_num_workers} loader "
            f"worker(s){compiled}")


def describe_machine() -> dict:
    """The CPU (its name and vector capability), cores, torch threads and GPU: named beside every number
    a run or a bench script reports (machines of one kind differ, e.g. AVX-512 against AVX2 only)."""
    import os
    import platform
    from pathlib import Path

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu, "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__, "python": platform.python_version(),
    }
