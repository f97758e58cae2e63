"""MultiScaleDataset: an ImageNetDataset whose samples come at the resolution MultiScaleSampler picks per batch."""
import copy
from typing import Any, Dict, List, Tuple, Union

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

    @property
    def sized_ops(self) -> List[int]:
        """Positions in transform_ops of the ops whose size follows the sampler."""
        return [i for i, item in enumerate(self.transform_ops) if next(iter(item)) in SIZED_OPS]

    def ops_for(self, width: int, height: int) -> list:
        """The transform ops producing `width` x `height` images (built on first use)."""
        cache: Dict[Tuple[int, int], list] = self.__dict__.setdefault("_ops_by_size", {})
        key = (int(width), int(height))
        if key not in cache:
            if not self.sized_ops:
                raise ValueError(f"MultiScaleDataset({self.cls_label_path}): transform_ops has no "
                                 f"{', '.join(SIZED_OPS)}; add a RandCropImage (its size becomes each scale)")
            op_list = copy.deepcopy(self.transform_ops)
            for i in self.sized_ops:
                (name, params), = op_list[i].items()
                params = dict(params or {})
                params.pop("resize_short", None)
                params["size"] = list(key)
                op_list[i] = {name: params}
            cache[key] = create_operators(op_list, "MultiScaleDataset.transform_ops")
            if len(cache) == 1:
                names = ", ".join(next(iter(self.transform_ops[i])) for i in self.sized_ops)
                log_warning(f"MultiScaleDataset: the size of {names} follows the resolution MultiScaleSampler "
                            f"picks for each batch")
        return cache[key]

    def load(self, index: Union[int, Tuple[int, int, int]], return_bad_sample: bool) -> Any:
        """(image, label) of `index`, or of `(width, height, index)` at that resolution."""
        written = self.__dict__.setdefault("_written_ops", self.ops)
        if isinstance(index, (tuple, list)):
            width, height, index = index
            self.ops = self.ops_for(width, height)
        else:
            self.ops = written
        return super().load(int(index), return_bad_sample)
