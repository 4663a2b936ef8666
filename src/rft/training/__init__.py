"""What GRPO and SFT share: the session a job starts from (``session``), the run directory (``run_dir``),
checkpoints, the optimizer and RNG (``optim``), held-out evaluation (``evaluate``), the collectives under
torchrun (``distributed``), and the SFT loop (``sft``). Importing the package imports none of them."""
