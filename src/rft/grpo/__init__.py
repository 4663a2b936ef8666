"""GRPO: pure advantage/loss functions, per-token log-probs, and the training loop."""
