"""The one-click message, on top of the wings: (image || voice) -> prosody -> music -> video."""
