"""Model families; importing this package registers every named model (one file per family)."""
from .mobilenet_v1 import *  # noqa: F401,F403
from .mobilenet_v2 import *  # noqa: F401,F403
from .mobilenet_v3 import *  # noqa: F401,F403
from .mobilenext import *  # noqa: F401,F403
