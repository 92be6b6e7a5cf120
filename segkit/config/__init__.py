from .defaults import get_cfg
from .loader import ConfigError, load_cfg, merge_file, merge_opts, save_cfg

__all__ = ["get_cfg", "load_cfg", "merge_file", "merge_opts", "save_cfg", "ConfigError"]
