"""Data: loading and validation, cleaning, splits, augmentation and the ``datasets`` pipeline.

Names load on first use, so ``from mars_segformer.data.io import CLASS_NAMES`` needs neither
albumentations nor ``datasets``.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submod_attrs={
    "ai4mars": ["load_ai4mars_folder"],
    "augment": ["AUGMENTATIONS", "DEFAULT_AUGMENTATIONS", "REFERENCE_AUGMENTATIONS", "CutMix", "build_augmentation",
                "oversample_indices"],
    "clean": ["OutlierReport", "drop_outliers", "find_outliers"],
    "dataset": ["IMAGE_MEAN", "IMAGE_STD", "DataConfig", "MarsData", "MarsTransform", "build_dataset_dict", "normalize"],
    "errors": ["MarsDataError"],
    "io": ["CLASS_NAMES", "NUM_CLASSES", "MarsArrays", "arrays_from_course_layout", "load_npz", "save_npz"],
    "sample": ["sample_path"],
    "sources": ["load_arrays"],
    "split": ["train_val_split"],
})
