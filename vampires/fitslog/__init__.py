"""vampires.fitslog."""
