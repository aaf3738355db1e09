"""Upload errors in the UI read like REST's: the studio's decoder names what is wrong with a
file Gradio could not read, in the page's language, and only files Gradio itself received
(in its upload folder) are ever opened."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest
import soundfile as sf
from gradio.utils import get_upload_folder

from app.ui.uploads import check_audio_uploads, explain_failed_image


@pytest.fixture
def upload_dir() -> Path:
    folder = Path(get_upload_folder()) / "studio-test-uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _event(api_name: str, *blocks: object) -> SimpleNamespace:
    return SimpleNamespace(api_name=api_name, inputs=list(blocks))


def test_text_named_jpg_gets_the_image_error_in_each_language(upload_dir: Path) -> None:
    fake = upload_dir / "holiday.jpg"
    fake.write_text("not a photo")
    event = _event("cutout", gr.Image(type="filepath"))
    payload = [{"path": str(fake), "orig_name": "holiday.jpg"}]
    english = explain_failed_image(event, payload, "en")
    japanese = explain_failed_image(event, payload, "ja")
    assert english is not None and japanese is not None
    assert english.message != japanese.message
    for error in (english, japanese):
        assert error.message.endswith("(IMAGE_INVALID_FORMAT)")
        assert str(upload_dir) not in error.message
    assert "画像" in japanese.message


def test_a_readable_image_is_not_blamed(upload_dir: Path) -> None:
    from PIL import Image

    good = upload_dir / "ok.png"
    Image.new("RGB", (8, 8)).save(good)
    event = _event("cutout", gr.Image(type="filepath"))
    error = explain_failed_image(event, [{"path": str(good)}], "en")
    assert error is not None and error.message.endswith("(IMAGE_INVALID_FORMAT)")
    assert "could not be read as an image" in error.message


def test_files_outside_the_upload_folder_are_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.jpg"
    secret.write_text("private")
    event = _event("cutout", gr.Image(type="filepath"))
    assert explain_failed_image(event, [{"path": str(secret)}], "en") is None
    audio_event = _event("adjust_prosody", gr.Audio(type="filepath"))
    check_audio_uploads(audio_event, [{"path": str(secret)}], "en")  # not opened: no error


def test_audio_inputs_must_be_audio_with_the_areas_code(upload_dir: Path) -> None:
    fake = upload_dir / "voice.wav"
    fake.write_text("not audio")
    event = _event("mix_bgm", gr.Audio(type="filepath"), gr.Textbox())
    with pytest.raises(gr.Error) as info:
        check_audio_uploads(event, [{"path": str(fake)}, "x"], "ja")
    assert info.value.message.endswith("(BGM_AUDIO_INVALID)")
    assert "音声" in info.value.message
    real = upload_dir / "real.wav"
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(400 * 24, np.float32), 24000, format="WAV")
    real.write_bytes(buffer.getvalue())
    check_audio_uploads(event, [{"path": str(real)}, "x"], "en")  # audio passes
