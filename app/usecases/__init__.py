"""What people do with the studio, for both doors (REST in app/api, Gradio in app/ui)."""
