"""vampires.camera."""
