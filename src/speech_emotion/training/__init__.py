"""Training: feature datasets (with training-only augmentation), the epoch loop, recipes and ONNX export."""
