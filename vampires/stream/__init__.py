"""vampires.stream."""
