"""`make down` keeps data: a stack stopped and started again serves the same objects and the same key."""

from pathlib import Path

import httpx
import pytest

from tests import stack as stack_mod


def test_down_then_up_keeps_everything(tmp_path: Path) -> None:
    first = stack_mod.start(tmp_path / "stack")
    try:
        headers = {"Authorization": f"Bearer {first.api_key}", "OpenAI-Beta": "assistants=v2"}
        a = httpx.post(f"{first.base_url}/assistants", json={"model": "gpt-4o", "name": "durable"},
                       headers=headers).json()
        f = httpx.post(f"{first.base_url}/files", data={"purpose": "assistants"},
                       files={"file": ("k.txt", b"kept bytes")}, headers=headers).json()
    finally:
        stack_mod.stop(first)
    with pytest.raises(httpx.TransportError):  # really stopped
        httpx.get(first.root_url + "/healthz", timeout=2)

    second = stack_mod.start(tmp_path / "stack")
    try:
        assert second.api_key == first.api_key
        headers = {"Authorization": f"Bearer {second.api_key}", "OpenAI-Beta": "assistants=v2"}
        assert httpx.get(f"{second.base_url}/assistants/{a['id']}", headers=headers).json()["name"] == "durable"
        assert httpx.get(f"{second.base_url}/files/{f['id']}/content", headers=headers).content == b"kept bytes"
    finally:
        stack_mod.stop(second)
