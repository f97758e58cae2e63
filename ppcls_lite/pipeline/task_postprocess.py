"""The post-processes of PaddleClas's practical tasks (PULC), with PaddleClas's names, parameters and result keys:

    ThreshOutput            yes/no detectors: class 1 when its probability reaches `threshold` (label_0 / label_1)
    MultiLabelThreshOutput  multi-label: every class whose sigmoid score reaches `threshold`
    PersonAttribute         PA100k's 26 pedestrian attributes -> readable attributes + the 0/1 vector
    VehicleAttribute        VeRi's 10 colours + 9 types -> "Color: (...), Type: (...)" + the 0/1 vector

Results of the first two have `file_name, class_ids, scores, label_names`; the attribute ones `file_name,
attributes, output` (PaddleClas's deploy keys).
"""
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .postprocess import POSTPROCESSES, PostProcess, names_by_id
from .results import SCORE_DECIMALS


def check_threshold(name: str, key: str, value: Any) -> float:
    """A probability threshold in [0, 1]; a ValueError naming `Infer.PostProcess.<key>` otherwise."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"Infer.PostProcess.{key} of {name} must be a probability in [0, 1], got {value!r}")
    return number


def _score(value: float) -> float:
    return round(float(value), SCORE_DECIMALS)


def _check_columns(name: str, probs: np.ndarray, count: int, what: str) -> None:
    if probs.ndim != 2 or probs.shape[1] != count:
        raise ValueError(f"{name} needs a model with {count} outputs ({what}), got scores of shape "
                         f"{list(probs.shape)}; check Arch.class_num")


@POSTPROCESSES.register()
class ThreshOutput(PostProcess):
    """Binary tasks: `class_ids [1]` with the class-1 probability when it is >= `threshold`, else `class_ids [0]`
    with 1 - that probability; names `label_0` / `label_1`. With more than two classes (PaddleClas's deploy
    form) the top class when its probability exceeds `threshold`, else `default_label_index`, named from
    `class_id_map_file`; `label_0` / `label_1` are then an error."""

    def __init__(self, threshold: float = 0.5, label_0: Optional[str] = None, label_1: Optional[str] = None,
                 default_label_index: int = 0, class_id_map_file: Optional[str] = None,
                 delimiter: Optional[str] = None, label_list: Optional[List[str]] = None):
        self.threshold = check_threshold("ThreshOutput", "threshold", threshold)
        self.binary_names = None if label_0 is None and label_1 is None else \
            [str("0" if label_0 is None else label_0), str("1" if label_1 is None else label_1)]
        self.default_label_index = int(default_label_index)
        self.label_list = names_by_id(class_id_map_file, label_list, delimiter)

    def inference_params(self) -> Dict[str, Any]:
        """See PostProcess.inference_params."""
        params = {"threshold": self.threshold, "default_label_index": self.default_label_index}
        if self.binary_names:
            params.update(label_0=self.binary_names[0], label_1=self.binary_names[1])
        return params

    def __call__(self, probs: Any, files: Sequence[str]) -> List[Dict[str, Any]]:
        probs = np.asarray(probs)
        if probs.shape[-1] == 2:
            names = self.binary_names or (self.label_list if self.label_list and len(self.label_list) == 2
                                          else ["0", "1"])
            results = []
            for file, row in zip(files, probs):
                positive = float(row[1]) >= self.threshold
                results.append({"file_name": str(file), "class_ids": [int(positive)],
                                "scores": [_score(row[1] if positive else 1.0 - row[1])],
                                "label_names": [names[int(positive)]]})
            return results
        if self.binary_names:
            raise ValueError(f"ThreshOutput: Infer.PostProcess.label_0/label_1 name the two classes of a yes/no "
                             f"model, but this model has {probs.shape[-1]} classes; remove them (and give "
                             f"class_id_map_file) or set Arch.class_num: 2")
        results = []
        for file, row in zip(files, probs):
            top = int(np.argmax(row))
            chosen = top if float(row[top]) > self.threshold else self.default_label_index
            name = self.label_list[chosen] if self.label_list and chosen < len(self.label_list) else ""
            results.append({"file_name": str(file), "class_ids": [chosen], "scores": [_score(row[chosen])],
                            "label_names": [name]})
        return results


@POSTPROCESSES.register()
class MultiLabelThreshOutput(PostProcess):
    """Multi-label: every class whose (sigmoid) score is >= `threshold`, in class-id order, with its score and
    name (`class_id_map_file`: `id<delimiter>name` lines)."""

    activation = "sigmoid"

    def __init__(self, threshold: float = 0.5, class_id_map_file: Optional[str] = None,
                 delimiter: Optional[str] = None, label_list: Optional[List[str]] = None):
        self.threshold = check_threshold("MultiLabelThreshOutput", "threshold", threshold)
        self.label_list = names_by_id(class_id_map_file, label_list, delimiter)

    def inference_params(self) -> Dict[str, Any]:
        """See PostProcess.inference_params."""
        return {"threshold": self.threshold}

    def __call__(self, probs: Any, files: Sequence[str]) -> List[Dict[str, Any]]:
        results = []
        for file, row in zip(files, np.asarray(probs)):
            ids = [int(i) for i in np.flatnonzero(row >= self.threshold)]
            names = self.label_list or []
            results.append({"file_name": str(file), "class_ids": ids, "scores": [_score(row[i]) for i in ids],
                            "label_names": [names[i] if i < len(names) else "" for i in ids] if names else []})
        return results


# PA100k's attribute groups, by position in the 26 outputs (PaddleClas's PersonAttribute).
PERSON_AGES = ["AgeLess18", "Age18-60", "AgeOver60"]            # 19, 20, 21
PERSON_DIRECTIONS = ["Front", "Side", "Back"]                    # 23, 24, 25
PERSON_BAGS = ["HandBag", "ShoulderBag", "Backpack"]             # 15, 16, 17
PERSON_UPPER = ["UpperStride", "UpperLogo", "UpperPlaid", "UpperSplice"]                   # 4..7
PERSON_LOWER = ["LowerStripe", "LowerPattern", "LongCoat", "Trousers", "Shorts", "Skirt&Dress"]  # 8..13


@POSTPROCESSES.register()
class PersonAttribute(PostProcess):
    """PA100k pedestrian attributes (26 sigmoid outputs): gender, age, direction, glasses, hat, holding objects,
    bag, upper and lower clothes, boots. `threshold` is the default, `glasses_threshold` (output 1) and
    `hold_threshold` (output 18) their own. Result: `attributes` (readable) and `output` (0/1 per attribute)."""

    activation = "sigmoid"

    def __init__(self, threshold: float = 0.5, glasses_threshold: float = 0.3, hold_threshold: float = 0.6,
                 label_list: Optional[List[str]] = None):
        self.threshold = check_threshold("PersonAttribute", "threshold", threshold)
        self.glasses_threshold = check_threshold("PersonAttribute", "glasses_threshold", glasses_threshold)
        self.hold_threshold = check_threshold("PersonAttribute", "hold_threshold", hold_threshold)
        self.label_list = label_list

    def inference_params(self) -> Dict[str, Any]:
        """See PostProcess.inference_params."""
        return {"threshold": self.threshold, "glasses_threshold": self.glasses_threshold,
                "hold_threshold": self.hold_threshold}

    def describe(self, res: np.ndarray) -> List[str]:
        """The readable attributes of one person's 26 scores (PaddleClas's rules and order)."""
        t = self.threshold
        bag = int(np.argmax(res[15:18]))
        upper = "Upper: " + ("LongSleeve" if res[3] > res[2] else "ShortSleeve")
        upper += "".join(f" {name}" for name, r in zip(PERSON_UPPER, res[4:8]) if r > t)
        lower = [name for name, r in zip(PERSON_LOWER, res[8:14]) if r > t] or [PERSON_LOWER[int(np.argmax(res[8:14]))]]
        return ["Female" if res[22] > t else "Male",
                PERSON_AGES[int(np.argmax(res[19:22]))],
                PERSON_DIRECTIONS[int(np.argmax(res[23:26]))],
                f"Glasses: {res[1] > self.glasses_threshold}",
                f"Hat: {res[0] > t}",
                f"HoldObjectsInFront: {res[18] > self.hold_threshold}",
                PERSON_BAGS[bag] if res[15 + bag] > t else "No bag",
                upper,
                "Lower:  " + " ".join(lower),
                "Boots" if res[14] > t else "No boots"]

    def __call__(self, probs: Any, files: Sequence[str]) -> List[Dict[str, Any]]:
        probs = np.asarray(probs)
        _check_columns("PersonAttribute", probs, 26, "PA100k's 26 attributes")
        thresholds = np.full(26, 0.5)
        thresholds[1], thresholds[18] = self.glasses_threshold, self.hold_threshold
        return [{"file_name": str(file), "attributes": self.describe(row),
                 "output": [int(v) for v in row > thresholds]} for file, row in zip(files, probs)]


VEHICLE_COLORS = ["yellow", "orange", "green", "gray", "red", "blue", "white", "golden", "brown", "black"]
VEHICLE_TYPES = ["sedan", "suv", "van", "hatchback", "mpv", "pickup", "bus", "truck", "estate"]


@POSTPROCESSES.register()
class VehicleAttribute(PostProcess):
    """VeRi vehicle attributes (19 sigmoid outputs: 10 colours, then 9 types): the most likely colour and type
    when their scores reach `color_threshold` / `type_threshold`, else "unknown". Result: `attributes` (one
    string) and `output` (0/1 per output)."""

    activation = "sigmoid"

    def __init__(self, color_threshold: float = 0.5, type_threshold: float = 0.5,
                 label_list: Optional[List[str]] = None):
        self.color_threshold = check_threshold("VehicleAttribute", "color_threshold", color_threshold)
        self.type_threshold = check_threshold("VehicleAttribute", "type_threshold", type_threshold)
        self.label_list = label_list

    def inference_params(self) -> Dict[str, Any]:
        """See PostProcess.inference_params."""
        return {"color_threshold": self.color_threshold, "type_threshold": self.type_threshold}

    def describe(self, res: np.ndarray) -> str:
        """"Color: (red, prob: 0.9), Type: (suv, prob: 0.8)" with "Color unknown" / "Type unknown" below threshold."""
        color, kind = int(np.argmax(res[:10])), int(np.argmax(res[10:]))
        color_info = (f"Color: ({VEHICLE_COLORS[color]}, prob: {_score(res[color])})"
                      if res[color] >= self.color_threshold else "Color unknown")
        type_info = (f"Type: ({VEHICLE_TYPES[kind]}, prob: {_score(res[10 + kind])})"
                     if res[10 + kind] >= self.type_threshold else "Type unknown")
        return f"{color_info}, {type_info}"

    def __call__(self, probs: Any, files: Sequence[str]) -> List[Dict[str, Any]]:
        probs = np.asarray(probs)
        _check_columns("VehicleAttribute", probs, 19, "10 colours and 9 types")
        thresholds = np.array([self.color_threshold] * 10 + [self.type_threshold] * 9)
        return [{"file_name": str(file), "attributes": self.describe(row),
                 "output": [int(v) for v in row > thresholds]} for file, row in zip(files, probs)]
