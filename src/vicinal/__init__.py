"""vicinal: locality-aware mixup for PyTorch."""

__version__ = "0.1.0"
