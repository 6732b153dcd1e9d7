"""Whisper encoder backbone: checkpoint readers, the encoder module, the log-mel front end and the recipe.

Only :mod:`.logmel` and :mod:`.checkpoint` are torch-free; inference uses ONNX bundles instead.
"""
