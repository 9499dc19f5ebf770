"""vampires.control."""
