"""The voice wing: speech routing, voice profiles (making, serving, evolving) and their jobs."""
