"""The work itself: plain functions over media values (no HTTP, no Gradio)."""
