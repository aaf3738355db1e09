"""Run from a separate process by ``test_gradio_client.py``: a person's script against a
running studio, exactly as the README shows it (authentication off;
``tests/security/gradio_door_client.py`` logs in).

    python gradio_client_script.py URL PHOTO TEXT OUT.json

It submits ``/generate_message``, records every status it sees while the job runs, then
copies the returned MP4 next to OUT.json and writes what it saw there as JSON.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from gradio_client import Client, handle_file


def main(url: str, photo: str, text: str, out: str) -> None:
    client = Client(url, verbose=False)
    job = client.submit(image=handle_file(photo), text=text, api_name="/generate_message")
    updates = []
    while not job.done():
        status = job.status()
        for unit in status.progress_data or []:
            updates.append({"progress": unit.progress, "desc": unit.desc})
        time.sleep(0.2)
    video = Path(job.result())
    target = Path(out).with_suffix(".mp4")
    shutil.copyfile(video, target)
    # predict() is the blocking form of the same call
    again = client.predict(image=handle_file(photo), text=text, bgm="none",
                           api_name="/generate_message")
    Path(out).write_text(json.dumps({"video": str(target), "updates": updates,
                                     "predict": str(again),
                                     "predict_exists": Path(again).is_file()}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
