"""YOTO: differentiable top-k gene panel selection with multi-task heads."""

__version__ = "0.1.0.dev0"
