"""Official checkpoint formats: detection from the keys, and conversion into segkit state_dicts.

Public API (used by segkit.zoo and the tools):
    FORMATS: dict[str, OfficialFormat]       every record, by "<name>:<variant>"
    unwrap(obj) -> dict[str, Tensor]           strips the wrappers the sources use ({"state_dict", "meta"}, "model.", "module.")
    detect_format(state_dict) -> Detection     the one record whose manifest the keys fit; FormatError otherwise
    convert_official(state_dict, detection) -> dict[str, Tensor]   segkit keys, checked against the manifest first
Each source has a module here exporting RECORDS: list[OfficialFormat].
"""
from .base import FormatError, OfficialFormat, StateDict

__all__ = ["FormatError", "OfficialFormat", "StateDict"]
