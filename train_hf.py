"""Train a Mars terrain segmentation model.

    accelerate launch train_hf.py                       # UperNet-R18 on the embedded sample (CPU, ~2-3 min)
    accelerate launch train_hf.py --data ../shared/data/ai4mars_msl_64x128.npz --num_train_epochs 100
    python train_hf.py configs/full.yaml --model unet-attention
    torchrun --nproc_per_node 2 train_hf.py ...         # data parallel, two processes

Every ``TrainingArguments`` flag works; ``python train_hf.py --help`` lists them all.
"""

import sys

from mars_segformer.training import main

if __name__ == "__main__":
    sys.exit(main())
