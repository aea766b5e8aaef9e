"""Grad-CAM explainability for contrastive thermal-image classifiers, built into Lightning."""

__version__ = "0.1.0"
