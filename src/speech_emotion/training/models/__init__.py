"""PyTorch models trained by :mod:`speech_emotion.training` and exported to ONNX bundles."""

from .cnn_lstm import CnnLstm, CnnLstmOptions
from .ensemble import Ensemble

__all__ = ["CnnLstm", "CnnLstmOptions", "Ensemble"]
