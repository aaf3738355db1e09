"""Looking at and listening to a finished message, from the MP4 alone.

A top-level package (not under ``pipelines/`` or ``models/``) on purpose: the harness judges
what the pipelines and the renderer made, so it must not share their code or their
assumptions. It reads only the file (ffmpeg from ``imageio-ffmpeg``), finds the face with its
own MediaPipe face mesh, and measures picture and sound the way a viewer would notice them.
Tests and ``bench/quality.py`` both import it.

    report = measure("message.mp4", music=True)
    print(table([report]))
    contact_sheet("message.mp4", "sheet.png", report)
"""

from quality.measure import GOALS, Check, Report, measure, table
from quality.sheet import contact_sheet

__all__ = ["GOALS", "Check", "Report", "contact_sheet", "measure", "table"]
