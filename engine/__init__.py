"""The paper's method as a library: no sockets, no files beyond an optional work directory."""
from .api import InpaintResult, inpaint, validate, working_size
from .config import PRESETS, VARIANTS, InpaintConfig, make_config
from .errors import InputError, TrainingCancelled, VinpaintError
from .train import ProgressEvent

__all__ = ["inpaint", "validate", "working_size", "InpaintResult", "InpaintConfig", "make_config", "PRESETS",
           "VARIANTS", "ProgressEvent", "InputError", "TrainingCancelled", "VinpaintError"]
