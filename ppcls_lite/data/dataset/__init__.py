"""Datasets: ImageNetDataset (list file), VeriWild (list file with identities and cameras, for retrieval) and
ImageFolderDataset (class folders)."""
from .common import DATASETS, BadImageError, BadSample, CommonDataset
from .image_folder_dataset import ImageFolderDataset
from .imagenet_dataset import ImageNetDataset
from .vehicle_dataset import VeriWild

__all__ = ["DATASETS", "ImageNetDataset", "VeriWild", "ImageFolderDataset", "CommonDataset", "BadImageError",
           "BadSample"]
