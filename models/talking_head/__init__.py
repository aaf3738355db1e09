"""Talking-head engines: Image + Audio -> Video (Wav2Lip, the landmark renderer, D-ID),
and what the landmark renderer is made of (face rig, visemes, idle motion, the MP4 writer)."""
