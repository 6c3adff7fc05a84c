"""Data: loading and validation, cleaning, splits, augmentation and the ``datasets`` pipeline."""

from .ai4mars import load_ai4mars_folder
from .augment import (
    AUGMENTATIONS,
    DEFAULT_AUGMENTATIONS,
    REFERENCE_AUGMENTATIONS,
    CutMix,
    build_augmentation,
    oversample_indices,
)
from .clean import OutlierReport, drop_outliers, find_outliers
from .dataset import IMAGE_MEAN, IMAGE_STD, DataConfig, MarsData, MarsTransform, build_dataset_dict, normalize
from .errors import MarsDataError
from .io import CLASS_NAMES, NUM_CLASSES, MarsArrays, arrays_from_course_layout, load_npz, save_npz
from .sample import sample_path
from .sources import load_arrays
from .split import train_val_split

__all__ = [
    "AUGMENTATIONS", "CLASS_NAMES", "DEFAULT_AUGMENTATIONS", "IMAGE_MEAN", "IMAGE_STD", "NUM_CLASSES", "REFERENCE_AUGMENTATIONS",
    "CutMix", "DataConfig", "MarsArrays", "MarsData", "MarsDataError", "MarsTransform", "OutlierReport",
    "arrays_from_course_layout", "build_augmentation", "drop_outliers", "build_dataset_dict", "find_outliers", "load_ai4mars_folder",
    "load_arrays", "load_npz", "normalize", "oversample_indices", "sample_path", "save_npz", "train_val_split",
]
