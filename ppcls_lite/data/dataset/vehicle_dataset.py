"""VeriWild: PaddleClas's list dataset for retrieval (vehicles, products, birds): `path identity [camera]` lines.

    DataLoader:
      Train: {dataset: {name: VeriWild, image_root: ./dataset/CUB_200_2011/, cls_label_path: ./train_list.txt}}
      Eval:
        Query:   {dataset: {name: VeriWild, ...query list...}, sampler: ..., loader: ...}
        Gallery: {dataset: {name: VeriWild, ...gallery list...}, sampler: ..., loader: ...}

The label is the identity (a class in training, any non-negative id in a Query/Gallery list). An optional third
column is the camera id: retrieval eval then ignores gallery images of the query's identity taken by the query's
camera (the ReID protocol). `relabel: True` maps the identities to 0..n-1 in ascending order.
"""
import os

from .common import DATASETS, split_list_line
from .imagenet_dataset import ImageNetDataset


def _integer(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


@DATASETS.register()
class VeriWild(ImageNetDataset):
    """ImageNetDataset whose lines may carry a camera id after the label: `cameras` (one per sample, or None
    when the list has no camera column)."""

    def __init__(self, image_root, cls_label_path, transform_ops=None, class_num=None, delimiter=None,
                 skip_bad_images=False, relabel=False, backend=None):
        # `backend` (PaddleClas's cv2/pil switch) changes nothing: DecodeImage in transform_ops decodes.
        self.cameras = []
        super().__init__(image_root, cls_label_path, transform_ops=transform_ops, class_num=class_num,
                         delimiter=delimiter, skip_bad_images=skip_bad_images, relabel=relabel)

    def _parse_line(self, line, delimiter):
        """`a.jpg 3 7`: label 3, camera 7 (unless `a.jpg 3` is itself an existing file: a name ending in a
        number); `a.jpg 3`: no camera."""
        rest, last = split_list_line(line, delimiter)
        path, label = split_list_line(rest, delimiter) if last is not None else (rest, None)
        camera = None
        if _integer(last) is not None and _integer(label) is not None and \
                not os.path.exists(os.path.join(self.image_root, rest)):
            camera, (rest, last) = int(last), (path, label)
        self.cameras.append(camera)
        return rest, last

    def _read_list(self, delimiter, class_num):
        super()._read_list(delimiter, class_num)
        given = [c is not None for c in self.cameras]
        if any(given) and not all(given):
            line = self.sources[given.index(False) if given[0] else given.index(True)]
            raise ValueError(f"{line}: some lines of {self.cls_label_path} have a camera column and some do not; "
                             f"give every line `path identity camera`, or none a camera")
        self.cameras = self.cameras if all(given) and given else None

    def check_files_exist(self, what: str) -> None:
        """As ImageNetDataset; the cameras of skipped missing images are dropped with them."""
        present = [os.path.exists(path) for path, _ in self.samples]
        super().check_files_exist(what)
        if self.cameras is not None and not all(present):
            self.cameras = [c for c, ok in zip(self.cameras, present) if ok]
