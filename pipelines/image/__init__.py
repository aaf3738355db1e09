"""The image wing: the portrait's cutout, matte refinement and framing, and its job."""
