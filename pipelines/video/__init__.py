"""The video wing: the talking-head render, subtitles burnt into it, and its job."""
