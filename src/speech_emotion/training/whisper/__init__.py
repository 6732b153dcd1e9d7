"""Whisper-backbone training: checkpoint readers, the encoder module, cached encoder states, the linear probe,
the ``whisper-base-probe`` recipe and its ONNX export. Needs PyTorch (inference uses the exported ONNX bundle
and the torch-free ``whisper-logmel`` features in :mod:`speech_emotion.features.logmel`).
"""
