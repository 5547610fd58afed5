"""Semi-supervised evaluation: fine-tune the whole network on 1 % or 10 % of the labels (PROTOCOLS C.2)."""

from .finetune import Classifier, evaluate, finetune, run_semisup, select_best, sweep_grid, validation_split
from .subsets import (
    STANDARD_SUBSETS,
    LabelledSubset,
    SubsetError,
    balanced_counts,
    balanced_subset,
    read_subset_file,
    select_subset,
    subset_from_names,
)

__all__ = [
    "STANDARD_SUBSETS",
    "Classifier",
    "LabelledSubset",
    "SubsetError",
    "balanced_counts",
    "balanced_subset",
    "evaluate",
    "finetune",
    "read_subset_file",
    "run_semisup",
    "select_best",
    "select_subset",
    "subset_from_names",
    "sweep_grid",
    "validation_split",
]
