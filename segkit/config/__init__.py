from .cls_defaults import get_cls_cfg
from .defaults import get_cfg
from .loader import ConfigError, load_cfg, load_cfg_text, merge_file, merge_opts, save_cfg
from .solver import add_solver_config

__all__ = ["add_solver_config", "get_cfg", "get_cls_cfg", "load_cfg", "load_cfg_text", "merge_file", "merge_opts", "save_cfg", "ConfigError"]
