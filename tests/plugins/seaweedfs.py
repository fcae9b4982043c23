"""pytest fixtures: seaweedfs (filled in by its module's work)."""
