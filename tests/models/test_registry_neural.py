"""A neural engine whose weights are in STUDIO_MODELS_DIR serves the API's jobs, in the fast
lane: tiny randomly initialised SegFormer and SAM2 checkpoints of the real architectures
(``tests/models/cutout/test_neural.py`` makes them) are placed in a studio's models dir, and
``POST /api/image/process`` must name them as the cutout and refinement engines. The
expectation comes from what the test placed (``expected_engine(..., present=...)``), not
from the engines' own ``available()``: weights that fail to load, or an engine the chain
skips, make the job fall back to mediapipe / closed_form, and that fails here."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.services import Services, build_services
from tests.conftest import expected_engine
from tests.fixtures import portraits
from tests.fixtures.image import png_bytes
from tests.models.cutout.test_neural import CLOTHES_LABELS, _save_sam2, _save_segformer

PLACED = {"segformer", "sam2"}


@pytest.fixture
def neural(settings: Settings) -> Iterator[tuple[TestClient, Services]]:
    models = settings.engine_settings().models_dir
    # one label ("Upper-clothes", a person label) wins everywhere: a whole matte in the box
    _save_segformer(models, CLOTHES_LABELS, winner="Upper-clothes")
    _save_sam2(models)
    services = build_services(settings, immediate=True)
    with TestClient(create_app(services, with_ui=False), raise_server_exceptions=False) as c:
        yield c, services
    services.close()


def test_image_job_is_served_by_the_neural_engines_whose_weights_are_there(neural) -> None:
    client, services = neural
    photo = portraits.single_portrait().image
    accepted = client.post(
        "/api/image/process", files={"image": ("p.png", png_bytes(photo), "image/png")},
        data={"operations": '["person_detection", "background_removal", '
                            '"matte_refinement", "framing"]'})
    assert accepted.status_code == 202, accepted.text
    status = client.get(accepted.json()["data"]["status_url"]).json()["data"]
    assert status["status"] == "completed", status
    ops = {o["operation"]: o for o in status["operations_applied"]}

    cutout = ops["background_removal"]
    assert (cutout["method"], cutout["fallback_used"]) == \
        expected_engine(services, "cutout", PLACED) == ("segformer", True)
    # the one engine passed over is BiRefNet, for its missing weights; SegFormer was used
    attempts = cutout["details"]["attempts"]
    assert [(a["backend"], a["outcome"]) for a in attempts] == [
        ("birefnet", "skipped"), ("segformer", "used")], attempts
    assert "no weights" in attempts[0]["reason"]

    refinement = ops["matte_refinement"]
    assert (refinement["method"], refinement["fallback_used"]) == \
        expected_engine(services, "refiner", PLACED) == ("sam2", False)
    assert [a["outcome"] for a in refinement["details"]["attempts"]] == ["used"]

    cut = client.get(status["cutout_url"])
    assert cut.status_code == 200


def test_expected_engine_reads_the_tests_knowledge_not_the_chain(services) -> None:
    """Nothing placed: the bundled engines, as fallbacks where a neural one comes first."""
    assert expected_engine(services, "cutout") == ("mediapipe", True)
    assert expected_engine(services, "refiner") == ("closed_form", True)
    assert expected_engine(services, "talking_head") == ("builtin", True)
    assert expected_engine(services, "tts") == ("kokoro", False)
    assert expected_engine(services, "talking_head", {"wav2lip"}) == ("wav2lip", False)
    with pytest.raises(AssertionError):
        expected_engine(services, "cutout", {"mediapipe"})  # bundled: nothing to place
