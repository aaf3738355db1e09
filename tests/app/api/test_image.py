"""`/api/image/*` over HTTP: detect, process + status, and malicious uploads."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import pytest
from PIL import Image

from tests.conftest import expected_engine
from tests.fixtures import portraits
from tests.fixtures.image import png_bytes


def _jpeg(image: Image.Image) -> bytes:
    return png_bytes(image.convert("RGB"), "JPEG", quality=90)


def test_post_detect_200_lists_people_with_thumbnails(inline_client, group) -> None:
    response = inline_client.post("/api/image/detect",
                                  files={"image": ("group.jpg", _jpeg(group), "image/jpeg")})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert len(data["people"]) == 2
    person = data["people"][0]
    assert set(person) >= {"id", "bbox", "confidence", "face_bbox", "thumbnail_url"}
    thumb = inline_client.get(person["thumbnail_url"])
    assert thumb.status_code == 200
    assert Image.open(io.BytesIO(thumb.content)).size[0] <= 160
    assert data["default_selection"] == [0]


def test_post_detect_no_person_400(inline_client) -> None:
    body = png_bytes(portraits.no_person_image())
    response = inline_client.post("/api/image/detect",
                                  files={"image": ("x.png", body, "image/png")})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "IMAGE_NO_PERSON"


def test_post_process_202_then_status_completed(inline_client, inline_services,
                                                composite) -> None:
    response = inline_client.post(
        "/api/image/process",
        files={"image": ("p.jpg", _jpeg(composite.image), "image/jpeg")},
        data={"operations": '["person_detection", "background_removal", "sam2_refinement", '
                            '"framing"]', "aspect": "9:16", "size": "512",
              "background": "builtin", "background_id": "bokeh_night"})
    assert response.status_code == 202, response.text
    data = response.json()["data"]
    assert data["status"] == "queued"
    assert data["estimated_time"] > 0
    status = inline_client.get(f"/api/image/status/{data['task_id']}").json()["data"]
    assert status["status"] == "completed", status
    assert status["steps_remaining"] == []
    ops = {o["operation"]: o for o in status["operations_applied"]}
    # the request used the step's former name, which is still understood
    assert list(ops) == ["person_detection", "background_removal", "matte_refinement", "framing"]
    cutout, _ = expected_engine(inline_services, "cutout")
    assert ops["background_removal"]["method"] == cutout
    refinement = ops["matte_refinement"]
    refiner, fallback = expected_engine(inline_services, "refiner")
    assert refinement["method"] == refiner  # closed_form where no SAM2 weights are
    assert refinement["fallback_used"] is fallback
    if fallback:
        assert "SAM2" in refinement["details"]["note"]
    assert all(o["duration"] >= 0 for o in ops.values())
    out = inline_client.get(status["output_url"])
    framed = Image.open(io.BytesIO(out.content))
    assert framed.size == (288, 512)
    cut = Image.open(io.BytesIO(inline_client.get(status["cutout_url"]).content))
    assert cut.mode == "RGBA"
    assert cut.size == composite.image.size
    assert status["processing_time"] > 0


def test_post_process_cutout_only_as_webp(inline_client, composite) -> None:
    response = inline_client.post(
        "/api/image/process", files={"image": ("p.png", png_bytes(composite.image), "image/png")},
        data={"operations": "background_removal", "output_format": "webp"})
    task = response.json()["data"]["task_id"]
    status = inline_client.get(f"/api/image/status/{task}").json()["data"]
    assert status["status"] == "completed", status
    assert [o["operation"] for o in status["operations_applied"]] == ["background_removal"]
    out = Image.open(io.BytesIO(inline_client.get(status["output_url"]).content))
    assert out.format == "WEBP"
    assert out.mode == "RGBA"


@pytest.mark.parametrize(("data", "code"), [
    ({"operations": '["teleport"]'}, "IMAGE_INVALID_OPERATIONS"),
    ({"operations": '["sam2_refinement"]'}, "IMAGE_INVALID_OPERATIONS"),
    ({"output_format": "gif"}, "IMAGE_INVALID_FORMAT"),
    ({"aspect": "4:3"}, "IMAGE_INVALID_FRAMING"),
    ({"padding": "600"}, "IMAGE_INVALID_FRAMING"),
    ({"background": "upload"}, "IMAGE_MISSING"),
    ({"sensitivity": "0.95"}, "IMAGE_INVALID_SENSITIVITY"),
])
def test_post_process_bad_options_400(inline_client, composite, data, code) -> None:
    response = inline_client.post(
        "/api/image/process", files={"image": ("p.png", png_bytes(composite.image), "image/png")},
        data=data)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code


def test_get_status_unknown_404(inline_client) -> None:
    response = inline_client.get("/api/image/status/nope")
    assert response.status_code == 404


def _bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A tiny PNG whose header claims 900 MP."""
    raw = png_bytes(Image.new("L", (1, 1)))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    start = raw.index(b"IHDR") - 4
    new = struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF)
    return raw[:start] + new + raw[start + 25:]


def _zip_as_png() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("a.txt", "hello" * 100)
    return buffer.getvalue()


def _truncated_jpeg(composite) -> bytes:
    data = _jpeg(composite.image)
    return data[: len(data) // 2]


MALICIOUS = {
    "zero-byte": (lambda p: b"", 400, "IMAGE_EMPTY"),
    "truncated": (_truncated_jpeg, 400, "IMAGE_CORRUPT"),
    "zip-as-png": (lambda p: _zip_as_png(), 400, "IMAGE_INVALID_FORMAT"),
    "bomb": (lambda p: _bomb_png(), 400, "IMAGE_TOO_MANY_PIXELS"),
    "over-10MB": (lambda p: b"\x89PNG" + b"\0" * (10 * 1024 * 1024 + 10), 413,
                  "IMAGE_TOO_LARGE"),
    "gif": (lambda p: png_bytes(Image.new("RGB", (8, 8)), "GIF"), 400,
            "IMAGE_INVALID_FORMAT"),
    "text": (lambda p: b"<svg xmlns='http://www.w3.org/2000/svg'/>", 400,
             "IMAGE_INVALID_FORMAT"),
}


@pytest.mark.parametrize("name", list(MALICIOUS))
@pytest.mark.parametrize("route", ["/api/image/detect", "/api/image/process"])
def test_malicious_files_get_clear_errors_and_server_keeps_serving(
        inline_client, composite, name, route) -> None:
    make, status, code = MALICIOUS[name]
    response = inline_client.post(route, files={"image": ("evil.png", make(composite),
                                                          "image/png")})
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert inline_client.get("/health").status_code == 200


def test_missing_image_field_400(inline_client) -> None:
    response = inline_client.post("/api/image/detect")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "IMAGE_MISSING"


def test_get_backgrounds_lists_builtins(inline_client) -> None:
    data = inline_client.get("/api/image/backgrounds").json()["data"]
    assert len(data["backgrounds"]) >= 5
