"""Seeing what training does: metric sinks (TensorBoard, W&B, JSON lines), plots and the HTML report."""
