"""Data pipeline: datasets, transforms and build_dataloader for PaddleClas `DataLoader` sections.

    DataLoader:
      Train:
        dataset:
          name: ImageNetDataset          # or ImageFolderDataset (image_root/<class>/<image>, no list file),
                                         # MultiLabelDataset (`path<TAB>0,1,0`), MultiScaleDataset
          image_root: ./dataset/fashion_mnist_mini/
          cls_label_path: ./dataset/fashion_mnist_mini/train_list.txt   # `relative/path.png label` lines
          transform_ops: [{DecodeImage: {to_rgb: True}}, {RandCropImage: {size: 224}}, ...]
          batch_transform_ops: [{MixupOperator: {alpha: 0.2}}]          # optional: soft targets [N, class_num]
          skip_bad_images: False         # True: skip unreadable images, warn once per epoch with the list
        sampler: {name: DistributedBatchSampler, batch_size: 64, drop_last: False, shuffle: True}  # or BatchSampler,
                 # ClassBalancedSampler (imbalanced data), MultiScaleSampler (with MultiScaleDataset)
        loader: {num_workers: 4, use_shared_memory: True}

`label_list.txt` (`id name`) beside the list file gives `dataset.label_names`. tools/split_dataset.py writes
the list files for a folder of class folders; tools/prepare_fashion_mnist.py rebuilds the quick-start data.
"""
from ppcls_lite.utils.config_rules import ANY, NameCheck, SectionRules

from .dataset import (DATASETS, BadImageError, ImageFolderDataset, ImageNetDataset, MultiLabelDataset,
                      MultiScaleDataset)
from .loader import (MODES, SAMPLERS, ClassificationDataLoader, build_dataloader, build_dataset, check_data_values,
                     derive_seed)
from .preprocess import OPERATORS, check_op_item, create_operators, transform
from .preprocess.batch_ops import BATCH_OPS
from .samplers import ClassBalancedSampler, MultiScaleSampler, label_counts, scale_batch_sizes

__all__ = ["build_dataloader", "build_dataset", "ClassificationDataLoader", "derive_seed", "DATASETS",
           "ImageNetDataset", "ImageFolderDataset", "MultiLabelDataset", "MultiScaleDataset", "BadImageError",
           "ClassBalancedSampler", "MultiScaleSampler", "label_counts", "scale_batch_sizes", "OPERATORS",
           "create_operators", "transform", "CONFIG_RULES"]

# The DataLoader section's rules for ppcls_lite.config: {Train, Eval, Test} x {dataset, sampler, loader}, the
# names of datasets, samplers and ops (each op's parameters checked with its name), and the Infer.transforms ops.
CONFIG_RULES = SectionRules(
    schema=lambda: {"DataLoader": {mode: {"dataset": ANY, "sampler": ANY, "loader": ANY} for mode in MODES}},
    names=(NameCheck("DataLoader.*.dataset.name", DATASETS, required=True),
           NameCheck("DataLoader.*.sampler.name", SAMPLERS),
           NameCheck("DataLoader.*.dataset.transform_ops", OPERATORS, named_list=True, check_item=check_op_item),
           NameCheck("DataLoader.*.dataset.batch_transform_ops", BATCH_OPS, named_list=True,
                     check_item=check_op_item),
           NameCheck("Infer.transforms", OPERATORS, named_list=True, check_item=check_op_item)),
    check_values=check_data_values)
