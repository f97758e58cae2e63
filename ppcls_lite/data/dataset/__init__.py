"""Datasets: ImageNetDataset (list file) and ImageFolderDataset (class folders)."""
from .common import DATASETS, BadImageError, BadSample, CommonDataset
from .image_folder_dataset import ImageFolderDataset
from .imagenet_dataset import ImageNetDataset

__all__ = ["DATASETS", "ImageNetDataset", "ImageFolderDataset", "CommonDataset", "BadImageError", "BadSample"]
