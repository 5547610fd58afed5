"""Datasets: the registry, on-disk readers, embedded data and view augmentations."""

from .base import ArrayImageDataset, FileImageDataset, ImageDataset, decode_image
from .registry import DatasetInfo, build_dataset, get_dataset_info, list_datasets, register_dataset, resolve_data_root

__all__ = [
    "ArrayImageDataset",
    "DatasetInfo",
    "FileImageDataset",
    "ImageDataset",
    "build_dataset",
    "decode_image",
    "get_dataset_info",
    "list_datasets",
    "register_dataset",
    "resolve_data_root",
]
