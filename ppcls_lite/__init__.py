"""ppcls_lite: train, evaluate, export and serve mobile image classifiers with PaddlePaddle."""
import warnings

# Paddle warns about a missing ccache (for compiling custom C++ ops) on every import; nothing here compiles any.
warnings.filterwarnings("ignore", message="No ccache found")

__version__ = "0.1.0"
