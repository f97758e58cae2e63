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
      Eval:                              # retrieval (Global.eval_mode: retrieval): a query and a gallery loader
        Query: {dataset: {name: VeriWild, ...}, sampler: ..., loader: ...}
        Gallery: {dataset: {name: VeriWild, ...}, sampler: ..., loader: ...}

`label_list.txt` (`id name`) beside the list file gives `dataset.label_names`. tools/split_dataset.py writes
the list files for a folder of class folders; tools/prepare_fashion_mnist.py rebuilds the quick-start data.
"""
from ppcls_lite.utils.config_rules import ANY, NameCheck, SectionRules

from .dataset import DATASETS, BadImageError, ImageFolderDataset, ImageNetDataset, VeriWild
from .identity_sampler import RandomIdentityBatchSampler
from .infer_ops import infer_transforms
from .loader import (MODES, RETRIEVAL_PARTS, SAMPLERS, ClassificationDataLoader, build_dataloader, build_dataset,
                     check_data_values, derive_seed)
from .preprocess import OPERATORS, check_op_item, create_operators, transform
from .preprocess.batch_ops import BATCH_OPS

__all__ = ["build_dataloader", "build_dataset", "ClassificationDataLoader", "derive_seed", "DATASETS",
           "ImageNetDataset", "ImageFolderDataset", "VeriWild", "BadImageError", "create_operators", "transform",
           "RandomIdentityBatchSampler", "RETRIEVAL_PARTS", "infer_transforms", "CONFIG_RULES"]


def _loader_keys() -> dict:
    return {"dataset": ANY, "sampler": ANY, "loader": ANY}


def _dataloader_schema() -> dict:
    """{Train, Eval, Test} x {dataset, sampler, loader}; Eval may hold Query and Gallery loaders instead."""
    schema = {mode: _loader_keys() for mode in MODES}
    schema["Eval"].update({part: _loader_keys() for part in RETRIEVAL_PARTS})
    return {"DataLoader": schema}


def _name_checks(prefix: str) -> tuple:
    return (NameCheck(f"{prefix}.dataset.name", DATASETS, required=True),
            NameCheck(f"{prefix}.sampler.name", SAMPLERS),
            NameCheck(f"{prefix}.dataset.transform_ops", OPERATORS, named_list=True, check_item=check_op_item),
            NameCheck(f"{prefix}.dataset.batch_transform_ops", BATCH_OPS, named_list=True, check_item=check_op_item))


# The DataLoader section's rules for ppcls_lite.config: the schema above, the names of datasets, samplers and ops
# (each op's parameters checked with its name) of every loader (DataLoader.<mode> and DataLoader.Eval.<part>),
# and the Infer.transforms ops.
CONFIG_RULES = SectionRules(
    schema=_dataloader_schema,
    names=(*_name_checks("DataLoader.*"), *_name_checks("DataLoader.Eval.*"),
           NameCheck("Infer.transforms", OPERATORS, named_list=True, check_item=check_op_item)),
    check_values=check_data_values)
