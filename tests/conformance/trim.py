"""OpenAI's whole OpenAPI document trimmed to the part this server implements (pure: document in, document out).

What is kept, and why:
- the paths of the Assistants API, files and vector stores (`/assistants…`, `/files…`, `/threads…`,
  `/vector_stores…`), every operation whole; the suite narrows further with schemathesis's include/exclude;
- on each of their operations except the Files API's, an optional `OpenAI-Beta` header parameter whose only value
  is the document's beta (`assistants=v1` or `assistants=v2`): OpenAI requires the header on those endpoints but
  the documents do not declare it, and the shape of every body depends on it;
- of `components`, what those paths reference, transitively (schemas, responses, …), and every security scheme
  (the document's top-level `security` names them without a `$ref`);
- `openapi`, `info`, `servers`, `security` and `tags` as they are. The rest goes: other APIs' paths, `webhooks`,
  and the `x-oaiMeta` documentation index, which points at everything.

The result equals the trimmed files kept in ../shared/openapi (tests/unit/test_conformance_specs.py compares them
when both are at hand)."""

import copy
import re
from typing import Any

SERVED = re.compile(r"^/(assistants|files|threads|vector_stores)(/|$)")
# The Files API is not a beta API: OpenAI neither needs nor reads the header there.
BETA_FREE = re.compile(r"^/files(/|$)")
KEPT_TOP_LEVEL = ("openapi", "info", "servers", "security", "tags")
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def beta_header(beta: str) -> dict[str, Any]:
    return {"name": "OpenAI-Beta", "in": "header", "required": False, "schema": {"type": "string", "enum": [beta]}}


def trim(document: dict[str, Any], beta: str) -> dict[str, Any]:
    paths = {path: item if BETA_FREE.match(path) else _with_header(item, beta_header(beta))
             for path, item in document["paths"].items() if SERVED.match(path)}
    components = document.get("components", {})
    wanted = _referenced(paths, components)
    kept_components = {section: {name: entry for name, entry in entries.items()
                                 if section == "securitySchemes" or (section, name) in wanted}
                       for section, entries in components.items()}
    trimmed = {key: document[key] for key in document if key in KEPT_TOP_LEVEL}
    trimmed["paths"] = paths
    trimmed["components"] = {section: entries for section, entries in kept_components.items() if entries}
    # A deep copy, so that patching the result (the suite's errata) cannot reach into the caller's document;
    # nodes the YAML shared through aliases stay shared, as they were in the document.
    return copy.deepcopy(trimmed)


def _with_header(item: dict[str, Any], header: dict[str, Any]) -> dict[str, Any]:
    # New dicts and lists rather than appending: one parameter list may be shared by several operations (aliases).
    return {key: {**op, "parameters": [*op.get("parameters", []), header]} if key in HTTP_METHODS else op
            for key, op in item.items()}


def _referenced(root: Any, components: dict[str, Any]) -> set[tuple[str, str]]:
    """(section, name) of every component `root` references, directly or through other components."""
    found: set[tuple[str, str]] = set()
    pending = list(_refs(root))
    while pending:
        key = pending.pop()
        if key in found:
            continue
        found.add(key)
        section, name = key
        if name not in components.get(section, {}):
            raise ValueError(f"$ref to a missing component: #/components/{section}/{name}")
        pending.extend(_refs(components[section][name]))
    return found


def _refs(node: Any) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            ref = current.get("$ref")
            if isinstance(ref, str):
                out.append(_component_of(ref))
            stack.extend(value for key, value in current.items() if key != "$ref")
        elif isinstance(current, list):
            stack.extend(current)
    return out


def _component_of(ref: str) -> tuple[str, str]:
    parts = ref.split("/")
    if len(parts) != 4 or parts[:2] != ["#", "components"]:
        raise ValueError(f"unsupported $ref (only local components are expected): {ref}")
    # JSON Pointer escapes: ~1 is "/", ~0 is "~".
    return parts[2], parts[3].replace("~1", "/").replace("~0", "~")
