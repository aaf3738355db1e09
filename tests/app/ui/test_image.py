"""The Image tab through gradio_client: `/detect_people` and `/cutout` on a live server."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import LiveServer, expected_engine
from tests.fixtures import portraits

pytestmark = pytest.mark.slow


def test_detect_people_then_cutout(services, tmp_path: Path, group) -> None:
    from gradio_client import Client, handle_file

    photo = tmp_path / "group.png"
    group.save(photo)
    with LiveServer(services, with_ui=True) as server:
        client = Client(server.url + "/", verbose=False)
        thumbs, people, selection = client.predict(handle_file(str(photo)), 0.5,
                                                   api_name="/detect_people")
        assert len(people) == 2
        assert len(thumbs) == 2
        original, board, closeup, framed, download, engines = client.predict(
            handle_file(str(photo)), 0.5, [1], True, "1:1", 512, 0, "solid", "#223344",
            "warm_gradient", None, api_name="/cutout")
        assert Image.open(framed).size == (512, 512)
        assert Image.open(download).size == (512, 512)
        assert Image.open(board).size == group.size
        assert [e["operation"] for e in engines] == [
            "person_detection", "background_removal", "matte_refinement", "framing"]
        refiner, fallback = expected_engine(services, "refiner")
        assert engines[2]["method"] == refiner
        assert engines[2]["fallback_used"] is fallback


def test_cutout_with_no_person_shows_an_error(services, tmp_path: Path) -> None:
    from gradio_client import Client, handle_file

    photo = tmp_path / "none.png"
    portraits.no_person_image().save(photo)
    with LiveServer(services, with_ui=True) as server:
        client = Client(server.url + "/", verbose=False)
        with pytest.raises(Exception, match="IMAGE_NO_PERSON"):
            client.predict(handle_file(str(photo)), 0.5, api_name="/detect_people")
