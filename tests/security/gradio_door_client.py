"""Run from a separate process by ``test_gradio_door.py``: a script probing a running studio's
Gradio API with ``gradio_client`` (and plain HTTP), as an outsider would.

    python gradio_door_client.py PLAN.json OUT.json

PLAN names the studio's URL, two users' credentials (``[user, password or token]``), the
files to send and which probes to run; OUT records every outcome (value or error text) for
the test to judge. Nothing is asserted here.
"""

from __future__ import annotations

import json
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from gradio_client import Client, handle_file

ENDPOINTS = ("/generate_message", "/synthesize", "/create_profile", "/list_profiles",
             "/delete_profile", "/detect_people", "/cutout", "/adjust_prosody", "/mix_bgm",
             "/list_tracks", "/generate_video")


def outcome(call: Any) -> dict[str, Any]:
    try:
        return {"ok": True, "value": _plain(call())}
    except Exception as exc:  # the outcome is what we record
        return {"ok": False, "type": type(exc).__name__, "error": str(exc),
                "where": traceback.format_exc(limit=1)[-300:]}


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def endpoint_args(files: dict[str, str], profile: str | None = None) -> dict[str, dict]:
    """Valid arguments for every documented endpoint."""
    photo, speech = handle_file(files["portrait"]), handle_file(files["speech"])
    return {
        "/generate_message": {"image": photo, "text": "こんにちは。", "bgm": "none"},
        "/synthesize": {"text": "こんにちは。"},
        "/create_profile": {"name": "Gradio Alice", "files": [speech], "mic": None},
        "/list_profiles": {},
        "/delete_profile": {"profile_id": profile or "openvoice_missing"},
        "/detect_people": {"path": photo},
        "/cutout": {"path": photo, "bg_path": None, "do_refine": False},
        "/adjust_prosody": {"audio_path": speech, "message": "こんにちは。",
                            "emotion_name": "happy"},
        "/mix_bgm": {"voice_path": speech, "track_id": "calm-acoustic"},
        "/list_tracks": {},
        "/generate_video": {"image": photo, "audio": speech, "text": "", "size": "512x512"},
    }


def probe_door(plan: dict[str, Any]) -> dict[str, Any]:
    url, files = plan["url"], plan["files"]
    out: dict[str, Any] = {}
    out["anonymous_client"] = outcome(lambda: Client(url, verbose=False))
    out["anonymous_http"] = {}
    for name in ENDPOINTS:
        response = httpx.post(f"{url}gradio_api/call{name}", json={"data": []}, timeout=30)
        out["anonymous_http"][name] = {"status": response.status_code, "body": response.text}
    alice_user, _ = plan["alice"]
    out["wrong_password"] = outcome(
        lambda: Client(url, auth=(alice_user, "not-the-password"), verbose=False))
    out["wrong_name"] = outcome(lambda: Client(url, auth=("mallory", plan["alice"][1]),
                                               verbose=False))
    alice = Client(url, auth=tuple(plan["alice"]), verbose=False)
    bob = Client(url, auth=tuple(plan["bob"]), verbose=False)
    out["view_api"] = sorted(alice.view_api(return_format="dict",
                                            print_info=False)["named_endpoints"])

    # the same script once its session is gone: every endpoint is refused
    logged_out = Client(url, auth=tuple(plan["alice"]), verbose=False)
    logged_out.cookies = {}
    args = endpoint_args(files)
    out["logged_out"] = {name: outcome(lambda n=name: logged_out.predict(api_name=n, **args[n]))
                         for name in ENDPOINTS}

    # ownership across doors: alice's REST-made profile
    profile = plan["alice_profile"]
    out["alice_lists"] = outcome(lambda: alice.predict(api_name="/list_profiles"))
    out["bob_lists"] = outcome(lambda: bob.predict(api_name="/list_profiles"))
    out["bob_uses_in_message"] = outcome(lambda: bob.predict(
        api_name="/generate_message", image=handle_file(files["portrait"]), text="こんにちは。",
        voice=profile, bgm="none"))
    out["bob_uses_in_synthesize"] = outcome(lambda: bob.predict(
        api_name="/synthesize", text="こんにちは。", voice=f"profile:{profile}"))
    out["bob_deletes"] = outcome(lambda: bob.predict(api_name="/delete_profile",
                                                     profile_id=profile))
    out["alice_uses_in_synthesize"] = outcome(lambda: alice.predict(
        api_name="/synthesize", text="こんにちは。", voice=f"profile:{profile}"))

    # early answers and readable upload errors, in the caller's language
    out["unknown_mood"] = outcome(lambda: alice.predict(
        api_name="/generate_message", image=handle_file(files["portrait"]), text="こんにちは。",
        bgm="polka"))
    japanese = Client(url, auth=tuple(plan["alice"]), verbose=False,
                      headers={"Accept-Language": "ja"})
    for name, client in (("text_as_photo_en", alice), ("text_as_photo_ja", japanese)):
        out[name] = outcome(lambda c=client: c.predict(
            api_name="/generate_message", image=handle_file(files["text_as_jpg"]),
            text="こんにちは。"))
    out["text_as_audio"] = outcome(lambda: alice.predict(
        api_name="/adjust_prosody", audio_path=handle_file(files["text_as_wav"]),
        message="こんにちは。"))
    out["text_as_photo_cutout_ja"] = outcome(lambda: japanese.predict(
        api_name="/cutout", path=handle_file(files["text_as_jpg"]), bg_path=None))

    if plan.get("every_endpoint"):  # a valid login works on every endpoint, for real
        out["works"] = {}
        for name in ENDPOINTS:
            if name == "/delete_profile":
                continue
            out["works"][name] = outcome(lambda n=name: alice.predict(api_name=n, **args[n]))
        made = [row[0] for row in (out["works"]["/list_profiles"].get("value") or {})
                .get("data", [])]
        gradio_made = [p for p in made if p != profile]
        out["gradio_profile"] = gradio_made[0] if gradio_made else None
        out["works"]["/delete_profile"] = outcome(lambda: alice.predict(
            api_name="/delete_profile", profile_id=out["gradio_profile"] or "none"))
    return out


def probe_flood(plan: dict[str, Any]) -> dict[str, Any]:
    url, files = plan["url"], plan["files"]
    alice = Client(url, auth=tuple(plan["alice"]), verbose=False)

    def one(_: int) -> dict[str, Any]:
        return outcome(lambda: alice.predict(
            api_name="/generate_message", image=handle_file(files["portrait"]),
            text="こんにちは。", bgm="polka"))

    with ThreadPoolExecutor(max_workers=2) as pool:
        flood = list(pool.map(one, range(plan["flood"])))
    bob = Client(url, auth=tuple(plan["bob"]), verbose=False)
    return {"flood": flood,
            "after": outcome(lambda: alice.predict(api_name="/list_tracks")),
            "queue_full": outcome(lambda: bob.predict(
                api_name="/generate_message", image=handle_file(files["portrait"]),
                text="こんにちは。", bgm="none")),
            "too_large": outcome(lambda: alice.predict(
                api_name="/detect_people", path=handle_file(files["large"])))}


def main(plan_path: str, out_path: str) -> None:
    with open(plan_path, encoding="utf-8") as handle:
        plan = json.load(handle)
    result = probe_flood(plan) if plan.get("flood") else probe_door(plan)
    with open(out_path, "w", encoding="utf-8") as handle:
        json.dump(result, handle, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
