"""Model families; importing this package registers every named model (one file per family)."""
from . import mobilenet_v1, mobilenet_v2, mobilenet_v3, mobilenext  # noqa: F401  (each registers its variants)
from . import mobilenet_v4  # noqa: F401
