"""MultiScaleDataset: an ImageNetDataset whose samples come at the resolution MultiScaleSampler picks per batch."""
import copy
from typing import Any, Dict, Tuple, Union

from ..preprocess import create_operators
from .common import DATASETS, log_warning
from .imagenet_dataset import ImageNetDataset

# The ops whose output size the sampler's resolution replaces (PaddleClas's list).
SIZED_OPS = ("RandCropImage", "ResizeImage", "CropImage")


@DATASETS.register()
class MultiScaleDataset(ImageNetDataset):
    """ImageNetDataset (same list format and keys) for MultiScaleSampler, which asks for samples as
    `(width, height, index)`: every RandCropImage / ResizeImage / CropImage of `transform_ops` then produces
    width x height (their other parameters, e.g. RandCropImage's scale, are kept). A plain index uses the ops as
    written. The ops of each resolution are built once."""

    def __init__(self, image_root, cls_label_path, transform_ops=None, class_num=None, delimiter=None,
                 skip_bad_images=False, relabel=False):
        super().__init__(image_root, cls_label_path, transform_ops, class_num, delimiter, skip_bad_images, relabel)
        self.sized_ops = [i for i, item in enumerate(self.transform_ops) if next(iter(item)) in SIZED_OPS]
        if not self.sized_ops:
            raise ValueError(f"MultiScaleDataset({cls_label_path}): transform_ops has no {', '.join(SIZED_OPS)}; "
                             f"add a RandCropImage (its size becomes each scale of MultiScaleSampler)")
        self.written_ops = self.ops
        self._ops_by_size: Dict[Tuple[int, int], list] = {}
        self._announced = False

    def ops_for(self, width: int, height: int) -> list:
        """The transform ops producing `width` x `height` images (built on first use)."""
        key = (int(width), int(height))
        if key not in self._ops_by_size:
            op_list = copy.deepcopy(self.transform_ops)
            for i in self.sized_ops:
                (name, params), = op_list[i].items()
                params = dict(params or {})
                params.pop("resize_short", None)
                params["size"] = list(key)
                op_list[i] = {name: params}
            self._ops_by_size[key] = create_operators(op_list, "MultiScaleDataset.transform_ops")
            if not self._announced:
                self._announced = True
                log_warning(f"MultiScaleDataset: {', '.join(next(iter(self.transform_ops[i])) for i in self.sized_ops)}"
                            f" size follows the resolution MultiScaleSampler picks for each batch")
        return self._ops_by_size[key]

    def load(self, index: Union[int, Tuple[int, int, int]], return_bad_sample: bool) -> Any:
        """(image, label) of `index`, or of `(width, height, index)` at that resolution."""
        if isinstance(index, (tuple, list)):
            width, height, index = index
            self.ops = self.ops_for(width, height)
        else:
            self.ops = self.written_ops
        return super().load(int(index), return_bad_sample)
