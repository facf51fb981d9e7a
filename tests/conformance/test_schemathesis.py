"""Schemathesis against OpenAI's published specs (../shared/openapi) for the paths this server implements:
generated requests, valid and invalid, must never get a 5xx, and every response must match the spec's schema.

Two documented errata are applied to the specs, both about list objects:
- `first_id`/`last_id` are declared as plain strings, but OpenAI's API sent `null` for an empty list (what SDK
  users have seen, and what we send);
- the v1-era spec's ListAssistantFilesResponse and ListMessageFilesResponse require a property `items` that
  they do not define and the API never sent (a typo for `data`).
"""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.stack import ROOT, Stack

SPECS = Path(os.environ.get("OPENAPI_DIR", ROOT.parent / "shared" / "openapi"))
CASES = [
    ("assistants-only_v1-era_af97d0a.yaml", "assistants=v1"),
    ("assistants-only_v2-first_d3f8430.yaml", "assistants=v2"),
    ("assistants-only_head_f85dbe2.yaml", "assistants=v2"),
]
INCLUDE = r"^/(assistants|files|threads|vector_stores)"
# Not covered: File downloads (binary). A vector store file's parsed content and the store search are.
EXCLUDE = r"^/files/\{file_id\}/content$"


def _errata(spec: dict[str, Any]) -> dict[str, Any]:
    for schema in spec.get("components", {}).get("schemas", {}).values():
        props = schema.get("properties", {}) if isinstance(schema, dict) else {}
        if {"first_id", "last_id", "has_more", "data"} <= set(props):
            schema["required"] = [r for r in schema.get("required", []) if r in props]
            for key in ("first_id", "last_id"):
                props[key] = {"anyOf": [{"type": "string"}, {"type": "null"}]} if spec["openapi"].startswith("3.1") \
                    else {"type": "string", "nullable": True}
    return spec


@pytest.mark.parametrize(("spec_name", "beta"), CASES)
def test_spec_conformance(stack: Stack, tmp_path: Path, spec_name: str, beta: str) -> None:
    source = SPECS / spec_name
    if not source.exists():
        pytest.fail(f"{source} is missing: the specs ship in the shared/openapi folder beside the repo "
                    "(set OPENAPI_DIR to point elsewhere)")
    spec = _errata(yaml.safe_load(source.read_text()))
    patched = tmp_path / spec_name
    patched.write_text(yaml.safe_dump(spec, sort_keys=False))
    cmd = [str(Path(sys.executable).parent / "schemathesis"), "run", str(patched), "--url", stack.base_url,
           "-H", f"Authorization: Bearer {stack.api_key}", "-H", f"OpenAI-Beta: {beta}",
           "--include-path-regex", INCLUDE, "--exclude-path-regex", EXCLUDE,
           "--checks", "not_a_server_error,response_schema_conformance",
           "--phases", "examples,coverage,fuzzing", "--max-examples", "40", "--seed", "20261125",
           "--suppress-health-check", "all", "--no-color", "--generation-database", "none"]
    out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-20000:] + out.stderr[-5000:]
    assert "Traceback" not in stack.log("api")
