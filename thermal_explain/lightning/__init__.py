"""Lightning integration: ``GradCAMCallback`` for validation probes and predict outputs."""
