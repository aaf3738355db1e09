"""Matte refinement engines: Image + matte -> better matte (SAM2, closed-form matting)."""
