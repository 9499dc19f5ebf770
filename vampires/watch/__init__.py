"""vampires.watch."""
