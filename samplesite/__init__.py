"""samplesite package."""
