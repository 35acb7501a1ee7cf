"""Storage backends: one protocol (``base.CostStore``), one module per backend."""
