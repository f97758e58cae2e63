"""ppcls_lite: train, evaluate, export and serve mobile image classifiers with PaddlePaddle."""
import warnings

# Paddle warns about a missing ccache (for compiling custom C++ ops) on every import; nothing here compiles any.
warnings.filterwarnings("ignore", message="No ccache found")
# Paddle's BatchNorm says on every train-mode call that it tracks global statistics; that is what we want.
warnings.filterwarnings("ignore", message="When training, we now always track global mean and variance")

__version__ = "0.1.0"
