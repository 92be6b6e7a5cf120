"""The metadata segkit writes into its ONNX files, read where deploy and zoo both need it (this layer is
below both): `CONFIG_KEY` holds the config a file was exported with, so the file runs without --config-file
and a config given beside it is checked against it, as a checkpoint's is."""
from __future__ import annotations

import importlib.util

CONFIG_KEY = "segkit.config"


def onnx_metadata(path: str) -> dict[str, str]:
    """The key-value metadata of the ONNX file `path`, read by onnx, or by onnxruntime where only the runtime
    is installed; {} where neither is (what the file needs is then named when it is run)."""
    if importlib.util.find_spec("onnx") is not None:
        import onnx

        return {p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props}
    if importlib.util.find_spec("onnxruntime") is not None:
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        return dict(session.get_modelmeta().custom_metadata_map)
    return {}
