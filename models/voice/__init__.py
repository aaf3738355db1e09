"""Voice engines: speaker embeddings, voice conversion (OpenVoice, voice matching), denoising."""
