"""Ablation at equal compute: each recipe element added in turn, 2+ seeds, on the frame-grouped split.

    python bench/ablation.py --data ../shared/data/ai4mars_msl_64x128.npz --steps 600 --seeds 0 1
    python bench/ablation.py --render-only      # table + chart from finished runs
    python bench/ablation.py --steps 200 --configs A B --out bench/results/ablation/pair --name NAME
                                                # a paired re-run kept apart: bench/results/NAME.json only

Every (config, seed) trains in its own ``train_hf.py`` process into
``bench/results/ablation/<steps>_steps/<name>_s<seed>``;
finished runs (``metrics.json`` present) are skipped, so a killed sweep resumes where it stopped.
Results: ``bench/results/ablation_<steps>_steps.json``, ``docs/ablation.png`` and the table in ``docs/ablation.md``;
with ``--name``, ``bench/results/NAME.json`` alone (the runs of ``--out`` merged into it; no docs written), so that
configs re-run side by side on one machine do not replace the rows the docs cite.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import RESULTS, SHARED_DATA, machine, result_name, run_child  # noqa: E402
from mars_segformer.argparsing import ArgumentParser  # noqa: E402
from mars_segformer.outputs import atomic_write_json  # noqa: E402

PLAIN = ["--model", "segformer-b0", "--loss", "model", "--ignore_background", "false", "--class_weights", "none",
         "--augmentations", "hflip", "--cutmix_p", "0", "--oversample_big_rock", "1",
         "--learning_rate", "6e-4", "--lr_scheduler_type", "polynomial", "--warmup_steps", "0",
         "--repeat_factor_threshold", "0", "--weight_averaging", "none", "--logit_adjustment", "0"]


def _with(base, **kw):
    out = list(base)
    for k, v in kw.items():
        flag = f"--{k}"
        if flag in out:
            out[out.index(flag) + 1] = str(v)
        else:
            out += [flag, str(v)]
    return out


def _without(base, *flags):
    """``base`` with each of ``flags`` and its value taken out."""
    out, i = [], 0
    while i < len(base):
        if base[i] in flags:
            i += 2
            continue
        out.append(base[i])
        i += 1
    return out


FOCAL = _with(PLAIN, loss="focal", class_weights="auto")
IGNORE = _with(FOCAL, ignore_background="true")
AUG = _with(IGNORE, augmentations="hflip,rotate,scale,elastic,blur,brightness_contrast")
CUTMIX = _with(AUG, cutmix_p=0.5)
OVERSAMPLE = _with(CUTMIX, oversample_big_rock=15)

#: name -> (description, train_hf.py flags); each adds one element to the one before (see PARENT).
CONFIGS = {
    "1_plain": ("plain baseline: SegFormer-b0, model's CE (background a class), hflip", PLAIN),
    "2_focal_weights": ("+ focal loss with class weights", FOCAL),
    "3_ignore_background": ("+ background ignored in the loss", IGNORE),
    "4_full_augmentation": ("+ rotate, scale, elastic, blur, brightness/contrast", AUG),
    "5_cutmix": ("+ CutMix from 2-4 tiles (p=0.5)", CUTMIX),
    "6_oversample": ("+ big-rock oversampling x15", OVERSAMPLE),
    "6b_ignore_oversample": ("recipe 3 + big-rock oversampling x15 (no heavy augmentation, no CutMix)",
                             _with(IGNORE, oversample_big_rock=15)),
    # milder ways to reach big rock than x15 oversampling, still on recipe 3
    "6c_ignore_oversample4": ("recipe 3 + big-rock oversampling x4", _with(IGNORE, oversample_big_rock=4)),
    "6d_ignore_weights075": ("recipe 3 with class weights freq^-0.75 (big rock 18x soil, not 7x)",
                             _with(IGNORE, class_weights="auto:0.75")),
    # the other architectures with the best recipe at this budget (3: focal + weights + ignore background)
    "7_unet_attention": ("recipe 3 on an attention UNet (base 32, depth 4)", _with(IGNORE, model="unet-attention")),
    "7_deeplabv3plus": ("recipe 3 on DeepLabV3+ (resnet34 encoder)", _with(IGNORE, model="deeplabv3plus")),
    # native to transformers (no trust_remote_code): UperNet on transformers' ResNet, basic blocks
    "7_upernet_r18": ("recipe 3 on UperNet over a ResNet-18-shaped backbone, decoder 128 (native)",
                      _with(IGNORE, model="upernet-r18")),
    "7_upernet_r34": ("recipe 3 on UperNet over a ResNet-34-shaped backbone, decoder 256 (native)",
                      _with(IGNORE, model="upernet-r34")),
    "7_timm_segformer": ("recipe 3 on the all-MLP head over regnetx_016",
                         _with(IGNORE, model="timm-segformer", model_overrides='{"encoder_name": "regnetx_016"}')),
    # transformers' SegFormer-b0 for small tiles: first stride 2, logits at 1/2 of the tile (native)
    "7_segformer_b0_s2": ("recipe 3 on SegFormer-b0 with first stride 2 (logits at 1/2 of the tile, native)",
                          _with(IGNORE, model="segformer-b0-s2")),
}

#: candidates for big rock (issue 19), each one change to the default UperNet-R18 recipe (7_upernet_r18)
UPERNET = _with(IGNORE, model="upernet-r18")
BIG_ROCK = {
    "8_weights075": ("default + class weights freq^-0.75 (big rock ~18x soil)", _with(UPERNET, class_weights="auto:0.75")),
    "8_oversample4": ("default + big-rock tiles repeated x4", _with(UPERNET, oversample_big_rock=4)),
    "8_focal_lovasz": ("default loss + Lovász-softmax (focal:1,lovasz:1)", _with(UPERNET, loss="focal:1,lovasz:1")),
    "8_focal_dice": ("default loss + soft Dice (focal:1,dice:1)", _with(UPERNET, loss="focal:1,dice:1")),
    "8_ohem": ("OHEM: weighted cross-entropy of the hardest 25 % of pixels", _with(UPERNET, loss="ohem")),
    "8_repeat_factor": ("default + LVIS repeat-factor sampling, t = 0.3 (big-rock tiles ~2.7x)",
                        _with(UPERNET, repeat_factor_threshold=0.3)),
    "8_copy_paste": ("default + copy-paste of 1-3 big-rock instances into half the reads",
                     _with(UPERNET, augmentations="hflip,copy_paste")),
    "8_input_x2": ("default on tiles upsampled x2 before the model (128x256; ~4x the compute)",
                   _with(UPERNET, input_scale=2)),
    "8_input_x2_half": ("tiles upsampled x2 into a half-width UperNet-R18 (stages 32-256, decoder 64; ~1x compute)",
                        _with(UPERNET, input_scale=2, model_overrides='{"hidden_sizes": [32, 64, 128, 256], '
                              '"embedding_size": 32, "hidden_size": 64}')),
    "9_combo": ("the candidates that kept or raised big rock, together: focal:1,lovasz:1 + repeat-factor t 0.3 + "
                "EMA 0.999", _with(UPERNET, loss="focal:1,lovasz:1", repeat_factor_threshold=0.3,
                                   weight_averaging="ema:0.999")),
    "8_ema": ("default + EMA of the weights (decay 0.99, warm-up), the average evaluated and saved",
              _with(UPERNET, weight_averaging="ema:0.99")),
    "8_swa": ("default + SWA: uniform average of the weights over the last 25 % of steps",
              _with(UPERNET, weight_averaging="swa:0.75")),
}
CONFIGS.update(BIG_ROCK)
#: the decode head's width (issue 23: on AVX2 CPUs UperNet's 128-channel head costs more than the ResNet-18
#: backbone; a narrower head is the lever for the main job's time there), on the default recipe
HEAD = {"10_combo_head64": ("the default (9_combo) with a 64-channel UperNet decode head (128 in the default)",
                            _with(BIG_ROCK["9_combo"][1], model_overrides='{"hidden_size": 64}')),
        # what the narrower head saves, spent on resolution for small objects (8_input_x2 raised big-rock
        # precision and recall together at 4.2x the cost): tiles x1.5 (96x192), ~1.4x the default's cost
        "11_head64_x1.5": ("10_combo_head64 on tiles upsampled x1.5 before the model (96x192)",
                           _with(BIG_ROCK["9_combo"][1], model_overrides='{"hidden_size": 64}', input_scale=1.5))}
CONFIGS.update(HEAD)
#: post-hoc logit adjustment (the default's big-rock recall is ~4x its precision: class weights tilt the
#: prior); the shift is folded into the saved classifier's bias, training itself is unchanged
ADJUST = {"10_combo_logit_adj": ("the default (9_combo) with its logits adjusted by -tau*log(class weight) after "
                                 "training, tau picked on training tiles (--logit_adjustment auto)",
                                 _with(BIG_ROCK["9_combo"][1], logit_adjustment="auto"))}
#: the default on tiles x2 (8_input_x2 raised big-rock precision and recall together at 4.2x the CPU cost): a
#: contender where compute is cheap (bench/gpu_sweep.py), not a CPU default
ADJUST["11_combo_logit_adj_x2"] = ("the default (10_combo_logit_adj) on tiles upsampled x2 before the model "
                                   "(128x256, ~4x the compute)", _with(ADJUST["10_combo_logit_adj"][1], input_scale=2))
CONFIGS.update(ADJUST)
#: the default in bfloat16 autocast: not a recipe change but a precision check (issue 23: CPUs with AMX run
#: UperNet-R18 ~2x faster in bf16); its row says whether bf16 costs the default any quality
PRECISION = {"10_combo_bf16": ("the default (9_combo) trained in bf16 autocast (the loss in float32)",
                               _with(BIG_ROCK["9_combo"][1], bf16="true"))}
CONFIGS.update(PRECISION)
#: the default's learning rate (6e-4, the SegFormer recipe's) was never swept for this from-scratch CNN;
#: AdamW with BatchNorm usually takes more, and a short budget rewards it most
LEARNING_RATE = {f"12_combo_logit_adj_lr{lr}": (f"the default (10_combo_logit_adj) at learning rate {lr} (6e-4 in the "
                                                f"default)", _with(ADJUST["10_combo_logit_adj"][1], learning_rate=lr))
                 for lr in ("3e-4", "1.2e-3", "2.4e-3")}
CONFIGS.update(LEARNING_RATE)
#: OHEM alone collapsed (8_ohem: bedrock left out of the gradient); as a third term beside focal and Lovász the
#: common classes keep their gradient and the hardest quarter of pixels (rock faces against bedrock) gets more
HARD = {"13_combo_logit_adj_ohem": ("the default (10_combo_logit_adj) with an OHEM term added "
                                    "(focal:1,lovasz:1,ohem:0.5, the hardest 25 % of pixels)",
                                    _with(ADJUST["10_combo_logit_adj"][1], loss="focal:1,lovasz:1,ohem:0.5"))}
CONFIGS.update(HARD)
#: context beyond the tile: a tile-trained model finds far more big rock on whole frames (bench/frame_context.py),
#: and the rocks it misses on tiles are the large ones cut by the tile's edge; shifted reads of complete frames
#: (data/frame_shift.py) show training the windows the fixed grid hides, at the same cost per sample
CONTEXT = {"14_combo_logit_adj_frame_shift": ("the default (10_combo_logit_adj) + frame_shift: half the reads of a "
                                              "complete frame's tiles moved by up to half a tile inside the frame",
                                              _with(ADJUST["10_combo_logit_adj"][1], augmentations="hflip,frame_shift",
                                                    frame_read_p=0.5))}
#: the default on tiles x2 (the resolution lever for big rock, ~4x the compute): finishing at x2 did not pay
#: (bench/finish_scale.py), so this asks whether training at x2 from scratch does, at full length
CONTEXT["15_combo_logit_adj_frame_shift_x2"] = ("14_combo_logit_adj_frame_shift (the default until 19) on tiles upsampled x2 "
                                                "before the model (128x256, ~4x the compute)",
                                                _with(CONTEXT["14_combo_logit_adj_frame_shift"][1], input_scale=2))
#: scale augmentation with real context: frame_shift's windows at 2/3-1.5x the tile's size, resized to it
#: (data/frame_shift.py's ZOOM_SCALE), the scale jitter of common segmentation recipes without invented borders
CONTEXT["17_combo_logit_adj_frame_zoom"] = ("14_combo_logit_adj_frame_shift (the default until 19) with frame_zoom for "
                                            "frame_shift: the shifted windows 2/3-1.5x the tile's size, resized",
                                            _with(ADJUST["10_combo_logit_adj"][1], augmentations="hflip,frame_zoom",
                                                  frame_read_p=0.5))
#: ... with every read of a complete frame's tile moved and zoomed (--frame_read_p 1 instead of 0.5)
CONTEXT["18_combo_logit_adj_frame_zoom_p1"] = ("17_combo_logit_adj_frame_zoom with every read of a complete frame's "
                                               "tile moved (--frame_read_p 1)",
                                               _with(CONTEXT["17_combo_logit_adj_frame_zoom"][1], frame_read_p=1))
#: the default with every read of a complete frame's tile shifted (--frame_read_p 1 instead of 0.5), no zoom
CONTEXT["19_combo_logit_adj_frame_shift_p1"] = ("14_combo_logit_adj_frame_shift (the default before it) with every read of a "
                                                "complete frame's tile shifted (--frame_read_p 1)",
                                                _with(CONTEXT["14_combo_logit_adj_frame_shift"][1], frame_read_p=1))
#: frame_zoom led the default by far mid-run at full length and lost once the learning rate decayed (docs/results.md,
#: "Zoomed frame reads"): zoomed reads for the first 70 % of the steps, then the default's shifted reads at the
#: tile's scale, as detection recipes switch their strongest augmentation off for the last epochs
CONTEXT["21_combo_logit_adj_frame_zoom_until0.7"] = ("19_combo_logit_adj_frame_shift_p1 (the default) with frame_zoom "
                                                     "for the first 70 % of the steps (--frame_zoom_until 0.7), then "
                                                     "shifted reads only",
                                                     _with(CONTEXT["19_combo_logit_adj_frame_shift_p1"][1],
                                                           augmentations="hflip,frame_zoom", frame_zoom_until=0.7))
#: the default with the distillation term doubled (inert without bench/full_length.py --teachers, which gives the
#: teachers: training/distillation.py)
CONTEXT["22_combo_logit_adj_frame_shift_p1_distill2"] = ("19_combo_logit_adj_frame_shift_p1 (the default) with "
                                                          "--distill_weight 2 (with --teachers only)",
                                                          _with(CONTEXT["19_combo_logit_adj_frame_shift_p1"][1],
                                                                distill_weight=2))
#: the default distilled from teachers that see each complete training frame whole (inert without
#: bench/full_length.py --teachers): whole frames score far above tiles (inference/frames.py)
CONTEXT["23_combo_logit_adj_frame_shift_p1_teacher_frames"] = ("19_combo_logit_adj_frame_shift_p1 (the default) with "
                                                                "--teacher_view frame (with --teachers only)",
                                                                _with(CONTEXT["19_combo_logit_adj_frame_shift_p1"][1],
                                                                      teacher_view="frame"))
#: online self-distillation, a candidate default (no teachers to train first): from half the steps on, the run's own
#: EMA weights predict every complete training frame whole at each epoch's start, and the reads learn that
CONTEXT["24_combo_logit_adj_frame_shift_p1_self_frames"] = ("19_combo_logit_adj_frame_shift_p1 (the default) with "
                                                             "--self_distill 0.5 --teacher_view frame",
                                                             _with(CONTEXT["19_combo_logit_adj_frame_shift_p1"][1],
                                                                   self_distill=0.5, teacher_view="frame"))
#: the resolution lever on the current default: tiles x2 before the model (~3-4x the compute per sample); 15 ran it
#: on the default before 19 (half the frame reads shifted) on one split, so this is its pair under the default's reads
CONTEXT["26_combo_logit_adj_frame_shift_p1_x2"] = ("19_combo_logit_adj_frame_shift_p1 (the default) on tiles upsampled x2 "
                                                   "before the model (128x256, ~4x the compute)",
                                                   _with(CONTEXT["19_combo_logit_adj_frame_shift_p1"][1], input_scale=2))
#: the resolution lever inside issue 19's cost bar: x2 led the default on three splits at ~3x its cost per sample;
#: tiles x1.5 (2.25x the pixels) ask how much of that lead stays at about 2x
CONTEXT["27_combo_logit_adj_frame_shift_p1_x1.5"] = ("19_combo_logit_adj_frame_shift_p1 (the default) on tiles upsampled "
                                                     "x1.5 before the model (96x192, ~2x the compute)",
                                                     _with(CONTEXT["19_combo_logit_adj_frame_shift_p1"][1],
                                                           input_scale=1.5))
#: x1.5 kept most of x2's lead but cost 2.4x plain UperNet-R18 per sample, past issue 19's 2x; tiles x1.25 (80x160,
#: 1.56x the pixels) is the resolution step that fits the bar's cost
CONTEXT["28_combo_logit_adj_frame_shift_p1_x1.25"] = ("19_combo_logit_adj_frame_shift_p1 (the default) on tiles upsampled "
                                                      "x1.25 before the model (80x160, ~1.6x the compute)",
                                                      _with(CONTEXT["19_combo_logit_adj_frame_shift_p1"][1],
                                                            input_scale=1.25))
#: x1.5 inside the 2x bar by a narrower decode head: 192 channels cost 1.5x the default's per sample
#: (bench/results/recipe_cost_candidates_amd_avx512_bf16.json), so if the head's cost grows with its width squared,
#: the 128-channel head is about 40 % of the default's step (29: 96 channels). 30: 64 channels, for AVX2-only CPUs,
#: where the decode head costs more than the backbone: 11_head64_x1.5 measured 1.27x the default's step time there
#: (docs/results.md), against ~1.75x for head 96
CONTEXT.update({f"{number}_combo_logit_adj_frame_shift_p1_x1.5_head{width}": (
    f"19_combo_logit_adj_frame_shift_p1 (the default) on tiles upsampled x1.5 with a {width}-channel decode head "
    "(128 in the default)",
    _with(CONTEXT["19_combo_logit_adj_frame_shift_p1"][1], input_scale=1.5,
          model_overrides=f'{{"hidden_size": {width}}}'))
    for number, width in ((29, 96), (30, 64))})
#: the default whose one-change variants follow (configs 32 on)
X15_DEFAULT = "29_combo_logit_adj_frame_shift_p1_x1.5_head96"


#: the one-change variants of :data:`X15_DEFAULT`, in the order defined (their parent, and their bf16 twins', follows)
ON_DEFAULT: list[str] = []


def _on_default(name: str, change: str, **flags) -> None:
    """Add ``name`` to :data:`CONTEXT`: :data:`X15_DEFAULT` with one change, described and flagged."""
    CONTEXT[name] = f"{X15_DEFAULT} (the default) {change}", _with(CONTEXT[X15_DEFAULT][1], **flags)
    ON_DEFAULT.append(name)


#: regularisation, never swept: the default fits its training tiles far above its validation tiles (task mIoU
#: 0.75-0.83 on the tiles the logit adjustment searches against 0.62-0.68), and AdamW's decoupled weight decay is
#: 1e-3, against the 0.05 of recipes that train convolutional networks from scratch with AdamW (ConvNeXt, Swin).
#: At 200 steps there is nothing to regularise yet, so it is measured at full length
_on_default(
    "32_combo_logit_adj_frame_shift_p1_x1.5_head96_wd0.05", "with AdamW weight decay 0.05 instead of 1e-3",
    weight_decay=0.05)
#: regularisation by lighting: validation frames are other sols, cameras and exposures than the training frames
#: (the split is frame-grouped), while the default sees each training tile only at its own brightness; the images are
#: normalised by one fixed mean / std, so a brightness / contrast jitter (+-20 %, half the reads; the reference
#: recipe's, never measured alone at full length) is a change the model sees. Heavy augmentation together cost at 200
#: steps, where there is nothing to regularise yet, so it is measured at full length
_on_default(
    "33_combo_logit_adj_frame_shift_p1_x1.5_head96_bc", "+ brightness / contrast jitter (+-20 %, p 0.5)",
    augmentations="hflip,frame_shift,brightness_contrast")
#: 33 over-predicted big rock and lost 0.02-0.04: its +-0.2 brightness is +-51 grey levels, three times the sd of
#: frames' mean brightness (17 levels; big rock is the darkest class, median 44 against soil's 68), so the jitter
#: sized to the data's own spread (``exposure``: +-13 levels, contrast +-10 %) asks whether the strength was the fault
_on_default(
    "34_combo_logit_adj_frame_shift_p1_x1.5_head96_exposure", "+ exposure jitter (+-5 % brightness, +-10 % contrast)",
    augmentations="hflip,frame_shift,exposure")
#: weight averaging as SWA's paper has it: several runs of one split averaged gained up to +0.015 (bench/ensemble.py,
#: docs/results.md), and SWA samples such a spread inside one run by holding the learning rate up while it averages;
#: the default's EMA averages while the rate decays to zero. Linear decay to a quarter of the peak by 75 % of the
#: steps (the default schedule's own rate there), then held, the uniform average over the last quarter
_on_default(
    "35_combo_logit_adj_frame_shift_p1_x1.5_head96_swa_hold", "with SWA over the last 25 % of the steps at a held "
    "learning rate (a quarter of the peak) instead of EMA 0.999 on a decay to zero",
    weight_averaging="swa:0.75:0.25")
#: the same held rate from half the steps, twice the span averaged: 35 ended level with the default, its average
#: rising over its first three epochs and flat after; a longer span holds weights further apart
_on_default(
    "36_combo_logit_adj_frame_shift_p1_x1.5_head96_swa_half", "with SWA over the last half of the steps at a held "
    "learning rate (a quarter of the peak) instead of EMA 0.999 on a decay to zero",
    weight_averaging="swa:0.5:0.25")
#: copy-paste of big-rock instances (the issue's named augmentation) was measured only at 200 steps, before the logit
#: adjustment: there it painted big rock everywhere (precision 0.04). Simple Copy-Paste's gains grow with the schedule,
#: and the adjustment now takes back a shifted prior after training, so it is measured at full length, as built
#: (1-3 instances in half the reads), on the default's shifted frame reads
_on_default(
    "37_combo_logit_adj_frame_shift_p1_x1.5_head96_copy_paste", "+ copy-paste of 1-3 big-rock instances into half "
    "the reads",
    augmentations="hflip,frame_shift,copy_paste")
#: mmsegmentation's decode heads drop 10 % of the channels before their classifier; transformers' UperNet has no such
#: layer, so the default never had it (``--head_dropout``, a training-only hook). A regulariser at the head, where
#: the default's fit to its training tiles (0.75-0.83) stands far above its validation tiles (0.62-0.68)
_on_default(
    "38_combo_logit_adj_frame_shift_p1_x1.5_head96_head_dropout", "+ dropout of 10 % of the channels before the "
    "decode head's classifier (mmsegmentation's)",
    head_dropout=0.1)
#: 37 painted big rock (precision 0.19 / 0.26 at full length): its pastes make ~9 % of a batch's pixels big rock, against
#: 0.79 % in the labels. A fifth of its pasting (``--copy_paste_p 0.1``) asks whether a milder prior shift keeps the
#: rock shapes and loses less precision
_on_default(
    "39_combo_logit_adj_frame_shift_p1_x1.5_head96_copy_paste_p0.1", "+ copy-paste of 1-3 big-rock instances into a tenth of the reads",
    augmentations="hflip,frame_shift,copy_paste", copy_paste_p=0.1)
#: CutMix (the reference recipe's, built since issue 1) was measured alone only at the earliest budget (config 5, 64
#: steps on the recipe of then), where nothing regularises; the default now fits its training tiles far above its
#: validation frames (task mIoU 0.75-0.83 against 0.62-0.68), and mixing rectangles of 2-4 other tiles into half the
#: reads is the regulariser of CutMix-Seg (French et al., 2020). Measured at full length, at the reference's p 0.5
_on_default(
    "40_combo_logit_adj_frame_shift_p1_x1.5_head96_cutmix", "+ CutMix of 2-4 other tiles' rectangles into half the reads (the reference's p 0.5)",
    cutmix_p=0.5)
#: stochastic depth (timm's drop_path_rate, which its from-scratch ResNet recipes train with; transformers' ResNet has
#: none, so ``--drop_path``, a training-only hook): a regulariser inside the backbone, where head dropout (38) and
#: weight decay (32) acted at the head and on the weights, for the same gap between training and validation fit
_on_default(
    "41_combo_logit_adj_frame_shift_p1_x1.5_head96_drop_path", "+ stochastic depth in the ResNet blocks (0 at the first to 0.1 at the last)",
    drop_path=0.1)
#: the task metric is mean IoU, and Lovász-softmax is its convex surrogate (Berman et al., 2018); the default weighs
#: it equal to focal, a share never varied since the combination (9) took it at 1. Twice its weight asks whether more
#: of the gradient from the per-class IoU surrogate, where big rock counts as much as soil, lifts the rare class
_on_default(
    "42_combo_logit_adj_frame_shift_p1_x1.5_head96_lovasz2", "with the loss focal:1,lovasz:2 (Lovász-softmax at twice the focal term's weight)",
    loss="focal:1,lovasz:2")
CONFIGS.update(CONTEXT)
#: a wider decode head (UperNet's PPM / FPN channels; 128 in the default, 256 in the reference's all-MLP decoder): the
#: 64-channel head cost 0.009 at 200 steps (docs/results.md), so the head's width may be where small rocks are lost
WIDE = {f"20_combo_logit_adj_frame_shift_head{w}": (f"14_combo_logit_adj_frame_shift (the default until 19) with a {w}-channel "
                                                    "decode head (128 in the default)",
                                                    _with(CONTEXT["14_combo_logit_adj_frame_shift"][1],
                                                          model_overrides=f'{{"hidden_size": {w}}}'))
        for w in (192, 256)}
CONFIGS.update(WIDE)
#: deep supervision: UperNet's own auxiliary FCN head on stage 3 (1/16), its logits under the same loss at
#: transformers' auxiliary_loss_weight (0.4); the saved model is a plain UperNet (the head unused by pipeline)
AUX_HEAD = '{"use_auxiliary_head": true}'
DEEP = {"16_combo_logit_adj_frame_shift_aux": ("14_combo_logit_adj_frame_shift (the default until 19) + UperNet's auxiliary "
                                               "head (stage 3, loss weight 0.4)",
                                               _with(CONTEXT["14_combo_logit_adj_frame_shift"][1],
                                                     model_overrides=AUX_HEAD))}
CONFIGS.update(DEEP)
#: less early downsampling (issue 19's resolution candidate, native): ResNet's stem always divides by 4; ConvNeXt's
#: patchify stem takes its stride from patch_size, so the -s2 preset keeps its stages at strides 2-16 with a
#: 64-channel head (1.68x the default's cost per sample); the stride-4 preset is the same backbone at R18's
#: resolution (0.83x; bench/results/recipe_cost_convnext_amd_avx512.json)
BACKBONE = {f"25_combo_logit_adj_frame_shift_p1_{size.replace('-', '_')}": (
    f"19_combo_logit_adj_frame_shift_p1 (the default) on UperNet over a ConvNeXt-atto backbone, stem stride "
    f"{stride}{', decoder 64' if stride == 2 else ''} (--model upernet-{size})",
    _with(CONTEXT["19_combo_logit_adj_frame_shift_p1"][1], model=f"upernet-{size}"))
    for size, stride in (("convnext-atto", 4), ("convnext-atto-s2", 2))}
CONFIGS.update(BACKBONE)
#: the default and its OHEM variant in bf16 autocast (the CPU default where the CPU has bf16 instructions since
#: training/devices.py made it one), for full-length runs beside their stored float32 rows
BF16 = {f"{name}_bf16": (f"{desc}, in bf16 autocast", _with(flags, bf16="true"))
        for name, (desc, flags) in {**ADJUST, **HARD, **CONTEXT, **WIDE, **DEEP, **BACKBONE}.items()}
CONFIGS.update(BF16)
#: issue 19's switch: 29's model as the preset train_hf.py now defaults to (tiles x1.5 and the 96-channel head in
#: the preset's config, not in flags); kept out of the recipes above, as its --model is the change
SWITCH = {"31_upernet_r18_x1.5_h96": ("29_combo_logit_adj_frame_shift_p1_x1.5_head96 as the preset "
                                      "upernet-r18-x1.5-h96 (the default since issue 19's switch)",
                                      _with(CONTEXT["19_combo_logit_adj_frame_shift_p1"][1],
                                            model="upernet-r18-x1.5-h96"))}
CONFIGS.update(SWITCH)

#: the config each one changes one thing of; the table reports the difference to it
PARENT = {
    "2_focal_weights": "1_plain", "3_ignore_background": "2_focal_weights", "4_full_augmentation": "3_ignore_background",
    "5_cutmix": "4_full_augmentation", "6_oversample": "5_cutmix", "6b_ignore_oversample": "3_ignore_background",
    "6c_ignore_oversample4": "3_ignore_background", "6d_ignore_weights075": "3_ignore_background",
    "7_unet_attention": "3_ignore_background", "7_deeplabv3plus": "3_ignore_background",
    "7_timm_segformer": "3_ignore_background", "7_upernet_r18": "3_ignore_background",
    "7_upernet_r34": "3_ignore_background", "7_segformer_b0_s2": "3_ignore_background",
    **{name: "7_upernet_r18" for name in BIG_ROCK}, "10_combo_bf16": "9_combo", "10_combo_head64": "9_combo",
    "11_head64_x1.5": "10_combo_head64", "10_combo_logit_adj": "9_combo",
    "11_combo_logit_adj_x2": "10_combo_logit_adj", **{name: "10_combo_logit_adj" for name in LEARNING_RATE},
    "13_combo_logit_adj_ohem": "10_combo_logit_adj", "14_combo_logit_adj_frame_shift": "10_combo_logit_adj",
    **{name: name.removesuffix("_bf16") for name in BF16},
    **{name: X15_DEFAULT for name in ON_DEFAULT}, **{f"{name}_bf16": f"{X15_DEFAULT}_bf16" for name in ON_DEFAULT},
    "31_upernet_r18_x1.5_h96": "29_combo_logit_adj_frame_shift_p1_x1.5_head96",
    # measured only in bf16, paired with the bf16 default on the same seeds
    "14_combo_logit_adj_frame_shift_bf16": "10_combo_logit_adj_bf16",
    "15_combo_logit_adj_frame_shift_x2": "14_combo_logit_adj_frame_shift",
    "15_combo_logit_adj_frame_shift_x2_bf16": "14_combo_logit_adj_frame_shift_bf16",
    "16_combo_logit_adj_frame_shift_aux": "14_combo_logit_adj_frame_shift",
    "17_combo_logit_adj_frame_zoom": "14_combo_logit_adj_frame_shift",
    "17_combo_logit_adj_frame_zoom_bf16": "14_combo_logit_adj_frame_shift_bf16",
    "18_combo_logit_adj_frame_zoom_p1": "17_combo_logit_adj_frame_zoom",
    "19_combo_logit_adj_frame_shift_p1": "14_combo_logit_adj_frame_shift",
    "19_combo_logit_adj_frame_shift_p1_bf16": "14_combo_logit_adj_frame_shift_bf16",
    "21_combo_logit_adj_frame_zoom_until0.7": "19_combo_logit_adj_frame_shift_p1",
    "21_combo_logit_adj_frame_zoom_until0.7_bf16": "19_combo_logit_adj_frame_shift_p1_bf16",
    "22_combo_logit_adj_frame_shift_p1_distill2": "19_combo_logit_adj_frame_shift_p1",
    "22_combo_logit_adj_frame_shift_p1_distill2_bf16": "19_combo_logit_adj_frame_shift_p1_bf16",
    "23_combo_logit_adj_frame_shift_p1_teacher_frames": "19_combo_logit_adj_frame_shift_p1",
    "23_combo_logit_adj_frame_shift_p1_teacher_frames_bf16": "19_combo_logit_adj_frame_shift_p1_bf16",
    "24_combo_logit_adj_frame_shift_p1_self_frames": "19_combo_logit_adj_frame_shift_p1",
    "24_combo_logit_adj_frame_shift_p1_self_frames_bf16": "19_combo_logit_adj_frame_shift_p1_bf16",
    "26_combo_logit_adj_frame_shift_p1_x2": "19_combo_logit_adj_frame_shift_p1",
    "26_combo_logit_adj_frame_shift_p1_x2_bf16": "19_combo_logit_adj_frame_shift_p1_bf16",
    "27_combo_logit_adj_frame_shift_p1_x1.5": "19_combo_logit_adj_frame_shift_p1",
    "27_combo_logit_adj_frame_shift_p1_x1.5_bf16": "19_combo_logit_adj_frame_shift_p1_bf16",
    "28_combo_logit_adj_frame_shift_p1_x1.25": "19_combo_logit_adj_frame_shift_p1",
    "28_combo_logit_adj_frame_shift_p1_x1.25_bf16": "19_combo_logit_adj_frame_shift_p1_bf16",
    "29_combo_logit_adj_frame_shift_p1_x1.5_head96": "19_combo_logit_adj_frame_shift_p1",
    "29_combo_logit_adj_frame_shift_p1_x1.5_head96_bf16": "19_combo_logit_adj_frame_shift_p1_bf16",
    "30_combo_logit_adj_frame_shift_p1_x1.5_head64": "19_combo_logit_adj_frame_shift_p1",
    "30_combo_logit_adj_frame_shift_p1_x1.5_head64_bf16": "19_combo_logit_adj_frame_shift_p1_bf16",
    **{name: "14_combo_logit_adj_frame_shift" for name in WIDE},
    **{f"{name}_bf16": "14_combo_logit_adj_frame_shift_bf16" for name in WIDE},
    "16_combo_logit_adj_frame_shift_aux_bf16": "14_combo_logit_adj_frame_shift_bf16",
    **{name: "19_combo_logit_adj_frame_shift_p1" for name in BACKBONE},
    **{f"{name}_bf16": "19_combo_logit_adj_frame_shift_p1_bf16" for name in BACKBONE},
}


def fixed_precision(flags: list[str]) -> list[str]:
    """A recipe's flags, in float32 unless the recipe names a precision: bf16 became ``train_hf.py``'s default
    on CPUs with bf16 instructions, and the stored rows (float32) must keep their meaning on every machine."""
    return list(flags) if {"--bf16", "--fp16"} & set(flags) else [*flags, "--bf16", "false"]

#: the recipe ``train_hf.py`` runs with no flags (tests/test_ablation_defaults.py keeps the two in step)
DEFAULT_CONFIG = "31_upernet_r18_x1.5_h96"
#: the config whose stored rows stand for the default: the same model and recipe spelled as flags on upernet-r18
#: (tests/test_ablation_defaults.py checks that the two build one model)
DEFAULT_MEASURED_AS = PARENT[DEFAULT_CONFIG]


def _measured_default(rows: dict) -> str:
    """The row that stands for ``train_hf.py``'s default: :data:`DEFAULT_CONFIG`, else
    :data:`DEFAULT_MEASURED_AS`, each or where only its bf16 twin was measured, the twin (the default trains in
    bf16 on CPUs with bf16 instructions, where the twin ran)."""
    for name in (DEFAULT_CONFIG, DEFAULT_MEASURED_AS):
        for row in (name, f"{name}_bf16"):
            if row in rows:
                return row
    return DEFAULT_CONFIG


def _in_default(name: str) -> bool:
    node = DEFAULT_CONFIG
    while node:
        if node == name:
            return True
        node = PARENT.get(node)
    return False


def run_one(name, seed, args, out_root: Path) -> dict | None:
    out = out_root / f"{name}_s{seed}"
    if (out / "metrics.json").exists():
        done = json.loads((out / "metrics.json").read_text())
        if done.get("global_step") != args.steps:  # never mix budgets in one table
            raise SystemExit(f"{out} holds a {done.get('global_step')}-step run, not {args.steps}; use another --out")
        return done
    if out.exists():
        shutil.rmtree(out)  # an unfinished run: start it again from scratch
    cmd = [sys.executable, str(ROOT / "train_hf.py"), "--output_dir", str(out), "--data", args.data,
           *fixed_precision(CONFIGS[name][1]), "--max_steps", str(args.steps), "--per_device_train_batch_size", "32",
           "--seed", str(seed), "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false",
           "--disable_tqdm", "true", "--logging_steps", "50", "--num_preview", "6"]
    t0 = time.time()
    print(f"[ablation] {name} seed {seed}: {' '.join(cmd[2:])}", flush=True)
    log = out_root / f"{name}_s{seed}.log"
    with open(log, "w") as f:
        code = run_child(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, text=True)
    if code != 0:
        print(log.read_text()[-3000:], flush=True)
        return None
    m = json.loads((out / "metrics.json").read_text())
    # keep the numbers and figures, drop the weights: the sweep must stay small on disk
    for f in out.glob("*.safetensors"):
        f.unlink()
    print(f"[ablation] {name} seed {seed}: task mIoU {m['validation']['task_mean_iou']:.4f} in {time.time() - t0:.0f}s",
          flush=True)
    return m


def big_rock_precision_recall(cm) -> tuple[float, float]:
    """Big-rock pixel precision and recall from a (truth x prediction) confusion matrix over the
    non-background pixels (0 where undefined)."""
    cm = np.asarray(cm, dtype=np.float64)
    hit = cm[4, 4]
    return (float(hit / cm[:, 4].sum()) if cm[:, 4].sum() else 0.0, float(hit / cm[4].sum()) if cm[4].sum() else 0.0)


def already_held(row: dict | None, run: dict) -> bool:
    """The stored ``row`` already counts this finished run: its seed is among the row's seeds with the same
    score (or a score the row did not record, as rows merged before scores were kept)."""
    if row is None or run["seed"] not in row["seeds"]:
        return False
    score = run["validation"]["task_mean_iou"]
    return abs(row.get("seed_scores", {}).get(str(run["seed"]), score) - score) < 1e-12


def run_files(out_root: Path, name: str) -> list[Path]:
    """The ``metrics.json`` of config ``name``'s runs (folders ``NAME_sSEED``): a glob ``NAME_s*`` alone would also
    take another config whose name continues with ``_s`` (``..._convnext_atto`` and ``..._convnext_atto_s2_bf16``)."""
    return sorted(p for p in out_root.glob(f"{name}_s*/metrics.json")
                  if re.fullmatch(rf"{re.escape(name)}_s\d+", p.parent.name))


def summarize(out_root: Path, names, steps, stored: dict | None = None) -> dict:
    """Rows from the finished runs under ``out_root``, leaving out runs a ``stored`` row already holds
    (:func:`already_held`), so that what is left merges into it exactly (:func:`merge_rows`)."""
    rows = {}
    for name in names:
        runs = [json.loads(p.read_text()) for p in run_files(out_root, name)]
        runs = [r for r in runs if not already_held((stored or {}).get(name), r)]
        if not runs:
            continue
        score = np.array([r["validation"]["task_mean_iou"] for r in runs])
        per = {c: np.array([r["validation"][f"iou_{c}"] for r in runs]) for c in ("soil", "bedrock", "sand", "big_rock")}
        pr = np.array([big_rock_precision_recall(r["confusion_matrix"]) for r in runs])
        rows[name] = {
            "description": CONFIGS[name][0], "seeds": [r["seed"] for r in runs], "n": len(runs),
            "task_mean_iou": float(score.mean()), "task_mean_iou_std": float(score.std(ddof=1)) if len(runs) > 1 else None,
            "per_class": {c: float(v.mean()) for c, v in per.items()},
            "big_rock_precision": float(pr[:, 0].mean()), "big_rock_recall": float(pr[:, 1].mean()),
            "train_runtime_s": float(np.mean([r["train_runtime_s"] or 0 for r in runs])),
            "seed_scores": {str(r["seed"]): float(r["validation"]["task_mean_iou"]) for r in runs},
            "seed_big_rock": {str(r["seed"]): float(r["validation"]["iou_big_rock"]) for r in runs},
            "measured_on": f"{machine()['cpu']} ({machine()['cpu_capability']})",
        }
    return {"steps": steps, "batch_size": 32, "samples_seen": steps * 32, "machine": machine(), "rows": rows}


def backfill_seed_big_rock(row: dict, out_root: Path, name: str) -> dict:
    """``row`` with the big-rock IoU of each seed whose run it holds and whose folder is still under ``out_root``
    (rows stored before ``seed_big_rock`` was kept); a seed without its folder stays out, never guessed."""
    found = {str(r["seed"]): float(r["validation"]["iou_big_rock"])
             for r in (json.loads(p.read_text()) for p in run_files(out_root, name)) if already_held(row, r)}
    if not set(found) - set(row.get("seed_big_rock", {})):
        return row
    return {**row, "seed_big_rock": {**found, **row.get("seed_big_rock", {})}}


def merge_rows(earlier: dict | None, new: dict | None) -> dict:
    """One table row from a row stored by an earlier checkout and this checkout's runs of the same config.

    Run folders are not kept in git, so an earlier row survives only as its JSON aggregates. Runs of
    other seeds are added to it exactly: the mean and the sample std of the union follow from each
    part's count, mean and std (sufficient statistics), and the per-class, precision/recall and
    runtime means are count-weighted. ``new`` should leave out the runs ``earlier`` already holds
    (:func:`summarize` with ``stored``); a seed of ``earlier`` run again with another score replaces the row.
    """
    if earlier is None or new is None:
        return new or earlier
    if set(earlier["seeds"]) & set(new["seeds"]):
        return new
    n1, n2 = earlier["n"], new["n"]
    n = n1 + n2

    def mean(a, b):
        return (n1 * a + n2 * b) / n

    # sum of squares of each part: (n - 1) std^2 + n mean^2 (std None for one run)
    sq = sum((r["n"] - 1) * (r["task_mean_iou_std"] or 0.0) ** 2 + r["n"] * r["task_mean_iou"] ** 2
             for r in (earlier, new))
    m = mean(earlier["task_mean_iou"], new["task_mean_iou"])
    row = {**new, "seeds": sorted(earlier["seeds"] + new["seeds"]), "n": n, "task_mean_iou": m,
           "task_mean_iou_std": float(np.sqrt(max(sq - n * m * m, 0.0) / (n - 1))),
           "per_class": {c: mean(earlier["per_class"][c], new["per_class"][c]) for c in new["per_class"]},
           "train_runtime_s": mean(earlier["train_runtime_s"], new["train_runtime_s"]),
           "seed_scores": {**earlier.get("seed_scores", {}), **new.get("seed_scores", {})},
           "seed_big_rock": {**earlier.get("seed_big_rock", {}), **new.get("seed_big_rock", {})},
           "measured_on": f"{earlier.get('measured_on', 'earlier machine')} (seeds {earlier['seeds']}); "
                          f"{new['measured_on']} (seeds {new['seeds']})"}
    if "big_rock_precision" in earlier:
        for k in ("big_rock_precision", "big_rock_recall"):
            row[k] = mean(earlier[k], new[k])
    else:  # the earlier seeds did not record them: the new seeds' values only would mislead as a mean
        row.pop("big_rock_precision", None)
        row.pop("big_rock_recall", None)
    return row


def _pr(row: dict) -> str:
    if "big_rock_precision" not in row:  # rows measured before precision/recall were recorded
        return "-"
    return f"{row['big_rock_precision']:.2f} / {row['big_rock_recall']:.2f}"


def _plot(summary: dict, docs: Path) -> None:
    """``docs/ablation.png``: each config's mean task mIoU ± std over seeds, the default highlighted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary["rows"]
    names = list(rows)
    means = [rows[n]["task_mean_iou"] for n in names]
    errs = [rows[n]["task_mean_iou_std"] or 0 for n in names]
    fig, ax = plt.subplots(figsize=(9, 4))
    colors = ["#d08030" if n == DEFAULT_CONFIG else "#6078a0" for n in names]
    ax.barh(range(len(names)), means, xerr=errs, color=colors)
    if "1_plain" in rows:  # the bar: the default recipe must beat plain by 0.08
        target = rows["1_plain"]["task_mean_iou"] + 0.08
        ax.axvline(target, color="#c03030", ls="--", lw=1)
        ax.text(target, -0.6, " plain + 0.08", color="#c03030", va="bottom", fontsize=8)
    # a bar without big rock found cannot meet the target however long it is
    labels = [f"{n} (default)" if n == DEFAULT_CONFIG else n for n in names]
    labels = [f"{lab}, no big rock" if rows[n]["per_class"]["big_rock"] == 0 else lab for lab, n in zip(labels, names, strict=True)]
    ax.set_yticks(range(len(names)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("validation mean IoU, classes 1-4 (mean ± std over seeds)")
    ax.set_title(f"ablation at {summary['samples_seen']:,} samples seen ({summary['steps']} steps x 32)")
    fig.tight_layout()
    fig.savefig(docs / "ablation.png", dpi=110)
    plt.close(fig)


def _row(n: str, rows: dict) -> str:
    """One config's line of the table, with its Δ against the config it changes one thing of."""
    r = rows[n]
    pc = r["per_class"]
    std = f"{r['task_mean_iou_std']:.3f}" if r["task_mean_iou_std"] is not None else "-"
    parent = PARENT.get(n)
    if parent in rows:
        delta = r["task_mean_iou"] - rows[parent]["task_mean_iou"]
        diff = f"{delta:+.3f} ({parent.split('_')[0]})"
        spread = max(r["task_mean_iou_std"] or 0, rows[parent]["task_mean_iou_std"] or 0)
        verdict = "within seed spread" if abs(delta) <= spread else "helps" if delta > 0 else "hurts"
    else:
        diff, verdict = "-", "baseline" if n == "1_plain" else "-"
    if n == _measured_default(rows):
        verdict = f"**default**, {verdict}"
    elif n != "1_plain" and _in_default(n):  # the baseline's model and loss are not in the default
        verdict = f"kept in default, {verdict}"
    name = f"**{n}**" if n == _measured_default(rows) else n
    return (f"| {name} | {r['description']} | {r['seeds']} | {r['task_mean_iou']:.3f} | {std} | {diff} | {verdict} "
            f"| {pc['soil']:.3f} | {pc['bedrock']:.3f} | {pc['sand']:.3f} | {pc['big_rock']:.3f} "
            f"| {_pr(r)} | {r['train_runtime_s']:.0f} |")


def render(summary: dict, docs: Path) -> None:
    """``docs/ablation.png`` and ``docs/ablation.md`` from the stored summary."""
    _plot(summary, docs)
    rows = summary["rows"]
    lines = [
        f"Budget: {summary['steps']} steps x batch 32 = {summary['samples_seen']:,} samples seen per run; "
        "machine: each row's `measured_on` in the JSON (rows without it: the earlier AMD EPYC 2-core machine of "
        f"docs/model_zoo.md); this render: {summary['machine']['cpu']} "
        f"({summary['machine'].get('cpu_capability', '?')}), {summary['machine']['cores']} cores, GPU "
        f"{summary['machine']['gpu']}. Quality numbers do not depend on the machine; the s/run column does.",
        "",
        f"Δ: difference of the mean to the config named (the one this config changes one thing of); "
        f"with {min(r['n'] for r in rows.values())}-{max(r['n'] for r in rows.values())} seeds, a Δ smaller than "
        "the ± std columns is not evidence either way (verdict 'within seed spread'). **default**: what `train_hf.py` "
        "runs with no flags; 'kept in default': an element it includes. train s/run: wall time of the training part, "
        "often with other jobs on the machine; see docs/model_zoo.md for speed.",
        "",
        "| config | what | seeds | task mIoU (1-4) | ± std | Δ (vs) | verdict | soil | bedrock | sand | big rock "
        "| big-rock precision / recall | train s/run |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [_row(n, rows) for n in rows]
    default = _measured_default(rows)
    if "1_plain" in rows and default in rows:
        d, b = rows[default], rows["1_plain"]
        lines += ["", f"Default recipe ({default}) vs plain baseline: {d['task_mean_iou'] - b['task_mean_iou']:+.3f} "
                      f"task mIoU (target +0.08), big-rock IoU {d['per_class']['big_rock']:.3f} (target > 0), "
                      f"seeds {d['seeds']} vs {b['seeds']}."]
    (docs / "ablation.md").write_text("\n".join(lines) + "\n")


def main():
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(SHARED_DATA))
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--configs", nargs="+", default=list(CONFIGS))
    p.add_argument("--out", default=None, help="run folder (default bench/results/ablation/<steps>_steps)")
    p.add_argument("--render-only", action="store_true")
    p.add_argument("--name", type=result_name, default=None,
                   help="results name (bench/results/NAME.json, no docs written); default ablation_<steps>_steps")
    args = p.parse_args()
    unknown = set(args.configs) - set(CONFIGS)
    if unknown:
        raise SystemExit(f"unknown configs {sorted(unknown)}; choose from {list(CONFIGS)}")
    out_root = Path(args.out or RESULTS / "ablation" / f"{args.steps}_steps")
    out_root.mkdir(parents=True, exist_ok=True)
    if not args.render_only:
        if not Path(args.data).exists():
            raise SystemExit(f"{args.data}: no such file")
        for seed in args.seeds:  # seed-major: a cut-short sweep still has one seed of every config
            for name in args.configs:
                run_one(name, seed, args, out_root)
    # the table covers every config with finished runs at this budget, not only the ones run now
    # run folders are not kept in git: rows measured in an earlier checkout stay in the table from its
    # JSON, and this checkout's runs they do not hold yet are merged into them (merge_rows)
    name = args.name or f"ablation_{args.steps}_steps"
    stored = RESULTS / f"{name}.json"
    earlier = json.loads(stored.read_text())["rows"] if stored.exists() else {}
    summary = summarize(out_root, list(CONFIGS), args.steps, stored=earlier)
    summary["rows"] = {n: backfill_seed_big_rock(merge_rows(earlier.get(n), summary["rows"].get(n)), out_root, n)
                       for n in CONFIGS
                       if n in summary["rows"] or n in earlier}
    atomic_write_json(RESULTS / f"{name}.json", summary)
    if summary["rows"] and args.name is None:  # docs/ablation.md tables the main results file only
        docs = ROOT / "docs"
        docs.mkdir(exist_ok=True)
        render(summary, docs)
    print(json.dumps(summary["rows"], indent=1))


if __name__ == "__main__":
    main()
