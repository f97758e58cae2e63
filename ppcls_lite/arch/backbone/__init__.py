"""Model families; importing this package registers every named model (one file per family)."""
# noqa: F401 below: each module registers its variants when imported (list_models() keeps this order)
from . import mobilenet_v1, mobilenet_v2, mobilenet_v3, mobilenext, mobilenet_v4, resnet_vd  # noqa: F401
