"""Storage backends: one module per backend."""
