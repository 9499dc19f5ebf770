"""vampires.testing."""
