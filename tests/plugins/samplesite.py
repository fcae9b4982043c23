"""pytest fixtures: samplesite (filled in by its module's work)."""
