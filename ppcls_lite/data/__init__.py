"""Data pipeline: datasets, transforms and build_dataloader for PaddleClas `DataLoader` sections.

    DataLoader:
      Train:
        dataset:
          name: ImageNetDataset          # or ImageFolderDataset (image_root/<class>/<image>, no list file)
          image_root: ./dataset/fashion_mnist_mini/
          cls_label_path: ./dataset/fashion_mnist_mini/train_list.txt   # `relative/path.png label` lines
          transform_ops: [{DecodeImage: {to_rgb: True}}, {RandCropImage: {size: 224}}, ...]
          batch_transform_ops: [{MixupOperator: {alpha: 0.2}}]          # optional: soft targets [N, class_num]
          skip_bad_images: False         # True: skip unreadable images, warn once per epoch with the list
        sampler: {name: DistributedBatchSampler, batch_size: 64, drop_last: False, shuffle: True}  # or BatchSampler
        loader: {num_workers: 4, use_shared_memory: True}

`label_list.txt` (`id name`) beside the list file gives `dataset.label_names`. tools/split_dataset.py writes
the list files for a folder of class folders; tools/prepare_fashion_mnist.py rebuilds the quick-start data.
"""
from .dataset import DATASETS, BadImageError, ImageFolderDataset, ImageNetDataset
from .loader import ClassificationDataLoader, build_dataloader, build_dataset, derive_seed
from .preprocess import create_operators, transform

__all__ = ["build_dataloader", "build_dataset", "ClassificationDataLoader", "derive_seed", "DATASETS",
           "ImageNetDataset", "ImageFolderDataset", "BadImageError", "create_operators", "transform"]
