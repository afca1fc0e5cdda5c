"""Training tasks, one per model family: what a model computes for a batch (see ``tasks.base``)."""
