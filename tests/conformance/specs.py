"""Where the conformance suite gets each trimmed spec, in order:

1. the trimmed file in OPENAPI_DIR (default: ../shared/openapi beside the repository), as on machines that keep
   them (offline machines, this project's CI);
2. the pinned upstream document in the cache (upstream.cache_path), trimmed here;
3. the pinned upstream document downloaded into the cache (verified by sha256 first), trimmed here.

When none of them works, SpecUnavailable carries a message naming the spec, what was tried and why each failed,
and how to provide it; the suite reports it as the test's failure (conformance was not checked, so it did not
pass), and `make test` runs the suite last so that every other suite has run by then."""

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conformance import trim, upstream, yaml_load
from tests.conformance.upstream import Pin

REPO = Path(__file__).resolve().parents[2]


class SpecUnavailable(Exception):
    pass


@dataclass(frozen=True)
class Attempt:
    """One place a spec was looked for, and why it was not used (empty when it was)."""

    what: str
    failure: str = ""


def trimmed_dir() -> tuple[Path, str]:
    """The folder of trimmed specs, and how a message should call it."""
    if explicit := os.environ.get("OPENAPI_DIR"):
        return Path(explicit), "OPENAPI_DIR"
    return REPO.parent / "shared" / "openapi", "../shared/openapi beside the repository; OPENAPI_DIR unset"


def load_spec(pin: Pin, fetch: Callable[[Pin], Path] = upstream.download) -> dict[str, Any]:
    """The pinned spec trimmed to this API, from the first source that has it; SpecUnavailable otherwise."""
    attempts: list[Attempt] = []
    folder, folder_label = trimmed_dir()
    trimmed_file = folder / pin.trimmed_name
    if trimmed_file.is_file():
        return dict(yaml_load.load(trimmed_file))
    attempts.append(Attempt(f"the trimmed spec {trimmed_file} ({folder_label})", "not there"))

    cached = upstream.cache_path(pin)
    if cached.is_file():
        actual = upstream.sha256_of(cached)
        if actual == pin.sha256:
            return trim.trim(yaml_load.load(cached), pin.beta)
        attempts.append(Attempt(f"the cached document {cached}",
                                f"sha256 {actual} is not the pinned {pin.sha256}; downloading it again"))
    else:
        attempts.append(Attempt(f"the cached document {cached}", "not there"))

    try:
        return trim.trim(yaml_load.load(fetch(pin)), pin.beta)
    except upstream.DownloadFailed as exc:
        attempts.append(Attempt(f"a download of {upstream.url_of(pin)}", str(exc)))
    raise SpecUnavailable(unavailable_message(pin, attempts))


def unavailable_message(pin: Pin, attempts: list[Attempt]) -> str:
    cached = upstream.cache_path(pin)
    tried = "\n".join(f"  {n}. {a.what}: {a.failure}" for n, a in enumerate(attempts, 1))
    return (
        f"conformance against {pin.trimmed_name} could not run: OpenAI's spec is not available "
        f"(openai/openai-openapi {pin.path} at {pin.commit[:7]}).\n"
        f"Looked for, in order:\n{tried}\n"
        "To provide it, either:\n"
        f"  - download it where there is internet access and copy it to this machine as {cached}:\n"
        f"      curl -fL --create-dirs -o {cached} \\\n"
        f"        {upstream.url_of(pin)}\n"
        f"    (it is used only if its sha256 is {pin.sha256}; OPENAPI_CACHE_DIR moves the cache), or\n"
        f"  - set OPENAPI_DIR to a folder holding {pin.trimmed_name} (the spec already trimmed to this API, "
        "as this project's ../shared/openapi keeps it)."
    )
