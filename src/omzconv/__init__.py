"""omzconv: TF-Slim Inception-v4 / Inception-ResNet-v2 → OpenVINO IR, verified."""

__version__ = "0.1.0"
