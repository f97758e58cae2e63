from setuptools import find_packages, setup

setup(
    name="ppcls_lite",
    version="0.1.0",
    description="PaddlePaddle training suite for mobile image classifiers (MobileNetV1/V2/V3, MobileNeXt)",
    packages=find_packages(include=["ppcls_lite", "ppcls_lite.*"]),
    package_data={"ppcls_lite": ["pipeline/*.txt"]},
    python_requires=">=3.9",
    install_requires=[
        "paddlepaddle>=3.0",
        "numpy",
        "pyyaml",
        "opencv-python-headless",
        "pillow",
        "matplotlib",
        "visualdl",
        "safetensors",  # pickle-free weights: export --safetensors, .safetensors for Arch.pretrained
    ],
    extras_require={
        # onnx + ml_dtypes: onnxruntime.quantization (--quantize int8/fp16) imports both
        "deploy": ["paddle2onnx>=1.2", "onnxruntime>=1.16", "onnx", "ml_dtypes"],
        "mobile": ["MNN>=2.8"],  # --mnn export and the predictor's mnn backend
        "search": ["faiss-cpu"],  # tools/search.py --engine faiss (numpy is used without it)
    },
)
