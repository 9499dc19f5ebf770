"""vampires.link."""
