from setuptools import find_packages, setup

VIS = ["matplotlib", "tensorboard"]
DEPLOY = ["torch>=2.6", "onnx", "onnxscript", "onnxruntime", "openvino"]
HUB = ["timm", "huggingface_hub"]
DATA = ["scipy"]

setup(
    name="segkit",
    version="0.1.0",
    description="Semantic segmentation of street scenes in PyTorch: BiSeNet, FCN, PSPNet, DeepLabV3+ on an own backbone zoo",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["segkit", "segkit.*"]),
    # The key/shape manifests of the official checkpoint formats (segkit.zoo.formats).
    package_data={"segkit.zoo": ["manifests/*.json"]},
    # torch 2.4: segkit.deploy (imported by the tools) takes int_oo from torch.utils._sympy, and AMP uses
    # torch.amp.GradScaler (2.3); torchvision 0.19 is the release that goes with torch 2.4.
    install_requires=[
        "torch>=2.4",
        "torchvision>=0.19",
        "opencv-python",
        "numpy",
        "Pillow",
        "cityscapesscripts",
        "tabulate",
        "yacs",
        "PyYAML",  # imported by segkit.config and segkit.engine; yacs brings it, but segkit uses it directly
        "tqdm",
    ],
    # torchvision is imported by segkit itself (segkit.models.layers and fuse, segkit.pretrain); timm only by
    # segkit/zoo/hub.py (the hub extra), the tests and benchmarks/bench_backbones.py.
    # deploy (segkit.deploy): the torch.export-based ONNX exporter (Dim.DYNAMIC, ExportedProgram input: torch
    # 2.6 or newer) writes through onnxscript; onnxruntime runs, checks and quantizes the file; openvino runs the
    # same file (fp32, bf16, INT8) as `--runtime openvino`. The tests check every model's export, so the test
    # extra includes it.
    # hub: MODEL.BACKBONE.WEIGHTS timm:<model> downloads through timm (from the Hugging Face Hub); torchvision:<enum>
    # needs nothing more. Both are imported only when such a name is used (segkit/zoo/hub.py).
    # vis: matplotlib draws the evaluation pictures and training curves, tensorboard takes LOG.TENSORBOARD.
    # data: scipy reads COCO-Stuff 10k's .mat labels (segkit/data/labels.py); the tests write such labels.
    extras_require={
        "deploy": DEPLOY,
        "vis": VIS,
        "hub": HUB,
        "data": DATA,
        "test": ["pytest", "pytest-xdist", *HUB, *DEPLOY, *VIS, *DATA],
    },
)
