"""The metadata segkit writes into its ONNX files, read where deploy and zoo both need it (this layer is
below both): `CONFIG_KEY` holds the config a file was exported with, so the file runs without --config-file
and a config given beside it is checked against it, as a checkpoint's is."""
from __future__ import annotations

import importlib.util
import os

CONFIG_KEY = "segkit.config"
DEPLOY_INSTALL = 'pip install -e ".[deploy]"'  # the extra of setup.py that holds onnx, onnxruntime, openvino


def onnx_metadata(path: str) -> dict[str, str]:
    """The key-value metadata of the ONNX file `path`, read by onnx, or by onnxruntime where only the runtime
    is installed. A missing file, a file neither reads (cut short, not ONNX) and neither package installed
    are each an error naming the file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"ONNX file not found: {path}")
    try:
        if importlib.util.find_spec("onnx") is not None:
            import onnx

            return {p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props}
        if importlib.util.find_spec("onnxruntime") is not None:
            import onnxruntime

            session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
            return dict(session.get_modelmeta().custom_metadata_map)
    except Exception as e:  # noqa: BLE001 - protobuf's and onnxruntime's own errors for a bad file
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        raise ValueError(f"cannot load ONNX file {path} ({os.path.getsize(path)} bytes): truncated or not an ONNX "
                         f"model ({first_line})") from e
    raise ValueError(f"reading {path} needs onnx or onnxruntime (not installed): {DEPLOY_INSTALL}")
