"""finsam_eval: staggered-adoption difference-in-differences for Finsam (samordningsförbund)."""

from finsam_eval.registry import kommun_code, kommuner

__version__ = "0.1.0"

__all__ = ["__version__", "kommun_code", "kommuner"]
