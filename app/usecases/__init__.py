"""What people do with the studio, for both doors (REST in app/api, Gradio in app/ui).

One module per capability (image, video, prosody, music, voices, voice_evolve, messages,
jobs; tasks: what every status view shares). A use case takes what it needs (the store, the
jobs, the queue, a chain) and calls the pipelines; the doors parse the request, call it and
present the answer, and do not import pipelines themselves."""
