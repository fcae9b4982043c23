"""Shared pytest configuration: fixtures live in tests/plugins/, one module per real part."""

pytest_plugins = [
    "tests.plugins.samplesite",
    "tests.plugins.seaweedfs",
    "tests.plugins.cli",
    "tests.plugins.pages",
    "tests.plugins.browser",
    "tests.plugins.postgres",
]
