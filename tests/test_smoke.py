"""The app builds and answers /health in the envelope."""


def test_get_health_200(client) -> None:
    response = client.get("/health", headers={"X-Request-ID": "abc"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "abc"
    body = response.json()
    assert body["success"] is True
    assert set(body["data"]["engines"]) == {
        "tts", "voice_encoder", "voice_converter", "denoise", "naturalness",
        "person_detection", "cutout", "refiner", "talking_head"}
