"""The cloud's HTTP API as the e2e tests call it: JSON in, JSON (or bytes) out."""

import json
import urllib.request


def api(port: int, path: str, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        raw = response.read()
    return json.loads(raw) if response.headers.get_content_type() == "application/json" else raw


def answers(port: int, path: str):
    """The answer, or None while the service is not up (yet)."""
    try:
        return api(port, path)
    except OSError:
        return None


def promoted(port: int) -> list[dict]:
    return [v for v in answers(port, "/api/models") or [] if v["state"] == "promoted"]
