"""ppcls_lite: train, evaluate, export and serve mobile image classifiers with PaddlePaddle."""

__version__ = "0.1.0"
