"""The training loop: data preparation, the optimiser, early stopping on valid, the single test."""
