"""Person detection: where the people in a photo are."""
