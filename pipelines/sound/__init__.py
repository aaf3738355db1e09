"""The sound wing: prosody, background music and loudness, on audio already spoken."""
