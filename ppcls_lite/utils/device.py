"""Select the compute device (`Global.device`: cpu | gpu | xpu) with errors that say what to install."""
import os

import paddle

SUPPORTED_DEVICES = ("cpu", "gpu", "xpu")


def set_device(device: str) -> str:
    """Set paddle's device for this process and return the place string (e.g. 'gpu:1').

    With `paddle.distributed.launch` each process uses the card given by FLAGS_selected_gpus/xpus.
    """
    device = str(device or "cpu").lower()
    if device not in SUPPORTED_DEVICES:
        raise ValueError(f"Global.device={device!r} is not supported; use one of {', '.join(SUPPORTED_DEVICES)} "
                         f"(e.g. -o Global.device=cpu)")
    if device == "gpu":
        if not paddle.is_compiled_with_cuda():
            raise ValueError("Global.device=gpu but this PaddlePaddle build has no CUDA: install paddlepaddle-gpu, "
                             "or use -o Global.device=cpu")
        if paddle.device.cuda.device_count() == 0:
            raise ValueError("Global.device=gpu but no CUDA device is visible (check nvidia-smi and "
                             "CUDA_VISIBLE_DEVICES), or use -o Global.device=cpu")
        card = os.environ.get("FLAGS_selected_gpus", "0").split(",")[0]
        place = f"gpu:{card}"
    elif device == "xpu":
        if not paddle.is_compiled_with_xpu():
            raise ValueError("Global.device=xpu but this PaddlePaddle build has no XPU support: install the "
                             "Kunlun XPU build of PaddlePaddle, or use -o Global.device=cpu")
        card = os.environ.get("FLAGS_selected_xpus", "0").split(",")[0]
        place = f"xpu:{card}"
    else:
        place = "cpu"
    paddle.set_device(place)
    return place
