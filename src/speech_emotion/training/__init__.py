"""Training side (needs PyTorch): recipes, trainer, data and caches, models, ONNX export; may import inference code."""
