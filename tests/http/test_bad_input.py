"""Bad input over raw HTTP: every failure is OpenAI's error envelope with the right status, never a 500 or a
FastAPI-style 422, and the server keeps serving."""

from typing import Any

import httpx
import pytest

from tests.stack import Stack


def envelope(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return dict(body["error"])


def test_malformed_json(http: httpx.Client) -> None:
    err = envelope(http.post("/assistants", content=b'{"model": "gpt-4o",',
                             headers={"Content-Type": "application/json"}), 400)
    assert err["message"].startswith("We could not parse the JSON body of your request.")
    assert err["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({}, "model", "missing_required_parameter"),
        ({"model": 5}, "model", "invalid_type"),
        ({"model": "m", "name": 123}, "name", "invalid_type"),
        ({"model": "m", "tools": {"type": "code_interpreter"}}, "tools", "invalid_type"),
        ({"model": "m", "tools": [{"type": "function", "function": {"name": "bad name!"}}]},
         "tools[0].function.name", "invalid_value"),
        ({"model": "m", "metadata": {"k": 1}}, "metadata.k", "invalid_type"),
        ({"model": "m", "metadata": ["k"]}, "metadata", "invalid_type"),
        ({"model": "m", "temperature": "hot"}, "temperature", "invalid_type"),
        ({"model": "m", "bogus": 1}, "bogus", "unknown_parameter"),
    ],
)
def test_wrong_fields(http: httpx.Client, body: dict[str, Any], param: str, code: str) -> None:
    err = envelope(http.post("/assistants", json=body), 400)
    assert (err["param"], err["code"]) == (param, code), err


def test_body_of_the_wrong_shape(http: httpx.Client) -> None:
    assert "expected a JSON object" in envelope(http.post("/assistants", json=["model"]), 400)["message"]
    err = envelope(http.post("/assistants", content=b"model=gpt-4o",
                             headers={"Content-Type": "application/x-www-form-urlencoded"}), 400)
    assert err["code"] == "invalid_content_type"
    err = envelope(http.post("/assistants", content=b"hello", headers={"Content-Type": "text/plain"}), 400)
    assert err["code"] == "invalid_content_type"


def test_unknown_ids(http: httpx.Client) -> None:
    assert envelope(http.get("/assistants/asst_x"), 404)["message"] == "No assistant found with id 'asst_x'."
    assert envelope(http.get("/threads/thread_x"), 404)["message"] == "No thread found with id 'thread_x'."
    assert envelope(http.get("/files/file-x"), 404)["message"] == "No such File object: file-x"
    thread = http.post("/threads", json={}).json()["id"]
    assert envelope(http.get(f"/threads/{thread}/messages/msg_x"), 404)["message"] == \
        "No message found with id 'msg_x'."


def test_authentication(stack: Stack) -> None:
    with httpx.Client(base_url=stack.base_url, headers={"OpenAI-Beta": "assistants=v2"}) as anon:
        assert "didn't provide an API key" in envelope(anon.get("/assistants"), 401)["message"]
        err = envelope(anon.get("/assistants", headers={"Authorization": "Bearer sk-wrong-key-12345"}), 401)
        assert err["code"] == "invalid_api_key" and "sk-wrong-key-12345" not in err["message"]
        envelope(anon.get("/files", headers={"Authorization": "Basic abc"}), 401)


def test_beta_header(stack: Stack) -> None:
    with httpx.Client(base_url=stack.base_url, headers={"Authorization": f"Bearer {stack.api_key}"}) as c:
        err = envelope(c.get("/assistants"), 400)
        assert err["code"] == "invalid_beta" and "OpenAI-Beta" in err["message"]
        assert envelope(c.get("/threads/thread_x", headers={"OpenAI-Beta": "assistants=v3"}), 400)["code"] == \
            "invalid_beta"
        # Other beta flags may ride along; files need no beta header at all.
        assert c.get("/assistants", headers={"OpenAI-Beta": "realtime=v1, assistants=v2"}).status_code == 200
        assert c.get("/files").status_code == 200


def test_unknown_routes_and_methods(http: httpx.Client) -> None:
    assert envelope(http.get("/nothing/here"), 404)["message"] == "Invalid URL (GET /v1/nothing/here)"
    envelope(http.put("/assistants"), 405)


def test_query_validation(http: httpx.Client) -> None:
    assert envelope(http.get("/assistants", params={"limit": "abc"}), 400)["param"] == "limit"
    assert envelope(http.get("/assistants", params={"limit": 0}), 400)["code"] == "integer_below_min_value"
    assert envelope(http.get("/assistants", params={"order": "up"}), 400)["param"] == "order"


def test_upload_errors(http: httpx.Client) -> None:
    assert envelope(http.post("/files", json={"purpose": "assistants"}), 400)["code"] == "invalid_content_type"
    assert envelope(http.post("/files", data={"purpose": "assistants"}, files={}), 400)["code"] in (
        "invalid_content_type", "missing_required_parameter")
    err = envelope(http.post("/files", files={"file": ("a.txt", b"x")}), 400)
    assert (err["param"], err["code"]) == ("purpose", "missing_required_parameter")
    err = envelope(http.post("/files", files={"purpose": (None, "assistants")}), 400)  # multipart, no file
    assert (err["param"], err["code"]) == ("file", "missing_required_parameter")
    err = envelope(http.post("/files", data={"purpose": "assistants"}, files={"other": ("a.txt", b"x")}), 400)
    assert (err["param"], err["code"]) == ("other", "unknown_parameter")
    err = envelope(http.post("/files", content=b"--xyz\r\nbroken", headers={
        "Content-Type": "multipart/form-data; boundary=xyz"}), 400)
    assert err["type"] == "invalid_request_error"


def test_server_keeps_serving(stack: Stack, http: httpx.Client) -> None:
    for _ in range(20):
        http.post("/assistants", content=b"\xff\xfe garbage", headers={"Content-Type": "application/json"})
    assert httpx.get(stack.root_url + "/healthz").json() == {"status": "ok"}
    assert http.post("/assistants", json={"model": "gpt-4o"}).status_code == 200
    assert "Traceback" not in stack.log("api")
