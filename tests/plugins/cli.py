"""pytest fixtures: cli (filled in by its module's work)."""
