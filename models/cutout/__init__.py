"""Person cutout engines: Image -> alpha matte (BiRefNet, SegFormer, mediapipe, AWS)."""
