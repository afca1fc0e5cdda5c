"""recforge."""
