"""Command-line / config-file arguments of ``train_hf.py`` (parsed with ``HfArgumentParser``)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

import torch
from transformers import TrainingArguments

from ..data.augment import DEFAULT_AUGMENTATIONS
from ..data.copy_paste import PASTE_P
from ..data.frame_shift import SHIFT_P
from ..data.split import VAL_FRACTION
from .adjustment import AUTO_MAX_FIT, AUTO_MIN_GAIN, AUTO_TAUS, AUTO_TILES


@dataclass
class ModelArguments:
    # UperNet-R18: as good as the remote-code DeepLabV3+ at equal samples seen, about twice as fast on a CPU,
    # and it loads in plain transformers (no trust_remote_code); see docs/results.md. Since issue 19's full-length
    # runs on tiles x1.5 with a 96-channel head (models/upernet.py's UPERNET_R18_X15_H96): big rock +0.0145 over 5 splits
    model: str = field(default="upernet-r18-x1.5-h96", metadata={
        "aliases": ["--model_name_or_path"],
        "help": "a preset (see mars_segformer.PRESETS; a preset name wins over a same-named folder: write ./NAME "
                "for the folder), a checkpoint folder, or a Hub repo id (owner/name); checkpoints get the Mars labels"})
    model_revision: str | None = field(default=None, metadata={"help": "Hub branch, tag or commit of --model"})
    encoder_weights: str | None = field(default=None, metadata={
        "help": "pretrained timm weights for a custom architecture's encoder: a .safetensors file or a Hub repo id "
                "(e.g. timm/resnet34.a1_in1k); the saved model still loads without them"})
    encoder_lr_scale: float = field(default=1.0, metadata={"help": "learning rate of the encoder relative to the rest"})
    layer_lr_decay: float = field(default=1.0, metadata={"help": "layer-wise learning-rate decay over the encoder's "
                                  "blocks (e.g. 0.75 for a pretrained transformer backbone): block d of L runs at "
                                  "decay^(L+1-d), the embeddings at decay^(L+1) (1: off)"})
    loaded_lr_scale: float = field(default=1.0, metadata={"help": "learning rate of the tensors loaded from a "
                                   "checkpoint --model relative to the newly initialised ones (default for a "
                                   "checkpoint: 0.1, with --warmup_steps 0.2; see training/finetune.py)"})
    freeze_encoder_steps: int = field(default=0, metadata={"help": "keep the encoder frozen for the first N steps"})
    input_scale: float | None = field(default=None, metadata={"help": "resize tiles by this factor before the model "
        "(bilinear, done by the saved image processor too, so pipeline matches; logits come back at the tile's size); "
        "default: the checkpoint's, or 1"})
    tiny: bool = field(default=False, metadata={"help": "tiny widths of the preset (tests, smoke runs)"})
    head_dropout: float = field(default=0.0, metadata={"help": "UperNet: drop this share of channels before the decode "
                                "head's classifier while training (mmsegmentation's dropout_ratio, 0.1 there; 0: off); "
                                "the saved model is unchanged"})
    drop_path: float = field(default=0.0, metadata={"help": "UperNet-R18/R34: stochastic depth, each ResNet block's "
                             "residual branch dropped per sample while training, with a probability rising linearly "
                             "from 0 at the first block to this at the last (timm's drop_path_rate; 0: off); the saved "
                             "model is unchanged"})
    model_overrides: str | None = field(default=None, metadata={
        "help": "JSON dict of config fields, e.g. '{\"depth\": 3}'; '{\"use_auxiliary_head\": true}' trains UperNet's "
                "auxiliary head under the same loss (deep supervision)"})


@dataclass
class DataArguments:
    data: str | None = field(default=None, metadata={"help": "course .npz, the shared AI4Mars .npz, an AI4Mars folder, or a Hub dataset owner/name made by push_dataset_to_hub.py; default: embedded sample"})
    data_revision: str | None = field(default=None, metadata={"help": "branch, tag or commit of a Hub dataset --data"})
    val_fraction: float = field(default=VAL_FRACTION, metadata={"help": "share of frames held out for validation"})
    augmentations: str = field(default=",".join(DEFAULT_AUGMENTATIONS), metadata={"help": "comma-separated names, or 'none'; 'copy_paste' pastes "
        "1-3 big-rock instances (connected components with their pixels, scale-jittered) into half the training reads; "
        "'frame_shift' reads the tiles of complete frames (data with frame ids) moved by up to half a tile inside "
        "their frame (--frame_read_p of their reads); 'frame_zoom' does the same with windows 2/3-1.5x the tile's "
        "size, resized to it"})
    frame_read_p: float = field(default=SHIFT_P, metadata={"help": "share of the reads of complete frames' tiles that "
        "'frame_shift' / 'frame_zoom' move, in [0, 1] (0.5 before issue 19's full-length runs picked 1)"})
    frame_zoom_until: float = field(default=1.0, metadata={"help": "share of the training steps, in (0, 1], during "
        "which 'frame_zoom' zooms its reads; after it they are only shifted, at the tile's scale (1: throughout)"})
    cutmix_p: float = field(default=0.0, metadata={"help": "CutMix probability per training read (0: off; reference 0.5)"})
    copy_paste_p: float = field(default=PASTE_P, metadata={"help": "with 'copy_paste' in --augmentations: the share of "
                                "training reads that get 1-3 big-rock instances, in (0, 1]"})
    oversample_big_rock: int = field(default=1, metadata={"help": "copies of each big-rock training tile (1: off; reference 15)"})
    repeat_factor_threshold: float = field(default=0.3, metadata={"help": "LVIS repeat-factor sampling: a tile is "
        "repeated max(1, sqrt(t / f)) times for the rarest class it holds, f = that class's share of tiles (0: off; "
        "off by default when --oversample_big_rock is given)"})
    train_frames: str = field(default="0:1", metadata={"help": "share of training frames used, 'START:STOP' of a "
                              "seeded frame order, e.g. '0:0.5' and '0.5:1' for disjoint halves (validation unchanged)"})
    extra_data: str | None = field(default=None, metadata={"help": "extra labelled tiles (e.g. pseudo-labels from "
                                   "python -m mars_segformer.self_train), training split only; tiles of validation frames are dropped"})
    extra_share: float | None = field(default=None, metadata={"help": "share of the training rows drawn from "
                                      "--extra_data (default 0.5; only with --extra_data)"})
    drop_outliers: bool = field(default=True, metadata={"help": "drop tiles sharing one multi-class mask (course 'aliens')"})
    outlier_min_count: int = field(default=20)
    num_preview: int = field(default=6, metadata={"help": "validation tiles in the prediction grid PNG"})


@dataclass
class LossArguments:
    loss: str = field(default="focal:1,lovasz:1", metadata={"help": "'ce', 'focal', 'dice', 'jaccard', 'lovasz' (Lovász-softmax), 'ohem' (cross-entropy of the hardest pixels), weighted sums ('focal:1,dice:0.5'), or 'model' (the architecture's own cross-entropy)"})
    focal_gamma: float = field(default=2.0)
    ohem_keep: float = field(default=0.25, metadata={"help": "share of the counted pixels (the hardest) the 'ohem' loss keeps"})
    class_weights: str = field(default="auto", metadata={"help": "'auto' (pixel frequency^-0.5), 'auto:P' (frequency^-P), 'none', or 5 comma-separated numbers"})
    ignore_background: bool = field(default=True, metadata={"help": "leave background (0) pixels out of the loss"})
    teachers: str | None = field(default=None, metadata={"help": "distillation: comma-separated run folders (or "
                                 "checkpoints) trained on this run's split; the mean of their class probabilities on "
                                 "every training tile becomes a second target (default: none)"})
    self_distill: float | None = field(default=None, metadata={"help": "online self-distillation: from this share of "
                                       "the training steps on, at the start of each epoch the run's own averaged "
                                       "weights predict every training tile (as --teacher_view says) and the reads "
                                       "learn those probabilities beside the labels (--distill_weight); a number in "
                                       "[0, 1) (default: off)"})
    teacher_view: str = field(default="tile", metadata={"help": "what the teachers see of a training tile: 'tile' "
                              "(the tile alone) or 'frame' (its whole frame where the frame is complete, the "
                              "probabilities cut back into its tiles); inert without --teachers or --self_distill, "
                              "as --distill_weight is, so a recipe can name it for the runs given teachers"})
    distill_weight: float = field(default=1.0, metadata={"help": "weight of the cross-entropy against the teachers' "
                                  "probabilities (only with --teachers or --self_distill)"})
    logit_adjustment: str = field(default="auto", metadata={"help": "after training, shift each class's logit by "
                                  "-TAU*log(its class weight), folded into the saved classifier's bias (takes back the "
                                  "over-prediction class weights cause): a number TAU in [0, 2] (0: off), or 'auto' (the "
                                  f"TAU of {AUTO_TAUS[0]}, {AUTO_TAUS[1]}, ..., {AUTO_TAUS[-1]} scoring best on up to "
                                  f"{AUTO_TILES} training tiles, never validation; 0 unless it gains >= {AUTO_MIN_GAIN} "
                                  f"task mIoU there and tau 0 scores < {AUTO_MAX_FIT} there: memorised tiles cannot "
                                  "judge it)"})


@dataclass
class MarsTrainingArguments(TrainingArguments):
    """TrainingArguments with the reference recipe as defaults."""

    output_dir: str = field(default="runs/mars-segformer")
    overwrite: bool = field(default=False, metadata={"help": "allow an output_dir that already holds another run"})
    early_stopping_patience: int = field(default=10, metadata={"help": "evaluations without improvement before stopping (0: off)"})
    per_device_train_batch_size: int = 32
    per_device_eval_batch_size: int = 64
    learning_rate: float = 6e-4
    weight_decay: float = 1e-3
    max_grad_norm: float = 1.0
    # 12 since the x1.5 default (1.75x the step time of R18 at 1x on an AVX2-only CPU): the main job stays near
    # 7 minutes there (docs/results.md, "The main job"); full-length runs and configs/full.yaml set their own
    num_train_epochs: float = 12.0
    # polynomial decay as in SegFormer and in the ablation (bench/ablation.py), which runs this recipe
    lr_scheduler_type: str = "polynomial"
    warmup_steps: float = 0
    eval_strategy: str = "epoch"
    save_strategy: str = "epoch"
    logging_strategy: str = "steps"
    logging_steps: int = 5
    save_total_limit: int | None = 2
    load_best_model_at_end: bool = True
    metric_for_best_model: str | None = "task_mean_iou"
    greater_is_better: bool | None = True
    batch_eval_metrics: bool = True
    remove_unused_columns: bool = False
    report_to: str | None = field(default="auto", metadata={"help": "'auto': tensorboard when installed, else none"})
    dataloader_num_workers: int = 0
    keep_plots: int = field(default=3, metadata={"help": "per-evaluation plots kept under plots/: the last N "
                            "evaluations' and the best one's (-1: all)"})
    plot_every: int = field(default=1, metadata={"help": "draw the prediction grid and confusion matrix every N "
                            "evaluations (and at the best and the last); the GPU default is 5, where epochs take seconds"})
    keep_optimizer_state: bool = field(default=False, metadata={"help": "keep optimizer.pt / scheduler.pt in the "
                                       "checkpoints once training has ended (needed only to extend the run later "
                                       "with the same optimizer state)"})
    weight_averaging: str = field(default="ema:0.999", metadata={"help": "'none', 'ema[:DECAY]' (exponential moving "
                                  "average, default decay 0.999) or 'swa[:START[:LR]]' (uniform average from the share START "
                                  "of the steps, default 0.75; with LR the learning rate decays linearly to LR x its peak "
                                  "by START and is held there, as in SWA's paper); the averaged weights are evaluated, "
                                  "selected and saved"})
    ema_warmup: bool = field(default=True, metadata={"help": "with --weight_averaging ema: ramp the decay up over the "
                             "first steps (min(decay, (1+n)/(10+n))); false starts the average at the starting weights "
                             "with the full decay (a conservative fine-tune of a whole checkpoint: it stays nearer the "
                             "checkpoint, and gains less in a short run, bench/warm_start.py)"})
    channels_last: str = field(default="auto", metadata={"help": "convolution weights in channels-last memory format: "
                               "'auto' (for UperNet, on a CPU, where bench/cpu_speed.py measured it 1.12-1.39x faster, "
                               "and on CUDA, 1.16x at batch 32 on an H200 by bench/gpu_speed.py; off elsewhere), "
                               "'true' or 'false'"})
    torch_threads: str = field(default="auto", metadata={"help": "torch threads per process: a number, or 'auto' (on a CPU "
                               "under accelerate launch: the available cores shared among this machine's processes; "
                               "otherwise torch's choice, which follows OMP_NUM_THREADS)"})

    def __post_init__(self):
        if not self.use_cpu and not torch.cuda.is_available() and not torch.backends.mps.is_available():
            # on a CUDA build of torch without a GPU, only use_cpu makes torchrun processes a MULTI_CPU
            # group; otherwise each process silently trains alone as "process 0"
            self.use_cpu = True
        if self.use_cpu:
            self.dataloader_pin_memory = False
        if self.report_to == "auto":
            self.report_to = "tensorboard" if importlib.util.find_spec("tensorboard") else "none"
        super().__post_init__()

    def get_warmup_steps(self, num_training_steps: int) -> int:
        """``TrainingArguments``' warm-up, kept below the run's length: a share rounds up (0.1 of 1 step is 1),
        and a warm-up as long as the run leaves the polynomial schedule nothing to decay (division by zero)."""
        return min(super().get_warmup_steps(num_training_steps), max(0, num_training_steps - 1))
