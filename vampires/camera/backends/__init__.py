"""vampires.camera.backends."""
