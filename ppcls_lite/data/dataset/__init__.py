"""Datasets: ImageNetDataset (list file), ImageFolderDataset (class folders), MultiLabelDataset (0/1 vectors),
MultiScaleDataset (ImageNetDataset at the resolution MultiScaleSampler picks) and VeriWild (list file with
identities and cameras, for retrieval)."""
from .common import DATASETS, BadImageError, BadSample, CommonDataset
from .image_folder_dataset import ImageFolderDataset
from .imagenet_dataset import ImageNetDataset
from .multi_scale_dataset import MultiScaleDataset
from .multilabel_dataset import MultiLabelDataset
from .vehicle_dataset import VeriWild

__all__ = ["DATASETS", "ImageNetDataset", "ImageFolderDataset", "MultiLabelDataset", "MultiScaleDataset", "VeriWild",
           "CommonDataset", "BadImageError", "BadSample"]
