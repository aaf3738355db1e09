"""The shell that people and scripts touch: REST API, Gradio UI, queue, storage."""
