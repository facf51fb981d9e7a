"""The playground's third-party browser files: fetched from npm at pinned versions, committed, and checked.

The files are committed so that a clone builds and serves the playground with no network (the image build is
offline). This script is how they got there and how anyone can verify or renew them:

    python -m api.playground.vendor check   # offline: every committed file matches its pinned sha256
    python -m api.playground.vendor fetch   # npm pack each pinned version, check tarball integrity and sha256s
    python -m api.playground.vendor pin     # after changing a version in vendor.json: fetch and record hashes

`npm pack` is npm's own client (it verifies the tarball against the registry's integrity too); we compare the
tarball's sha512 with the one pinned here, then each extracted file's sha256.
"""

import argparse
import base64
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "vendor.json"
VENDOR_DIR = HERE / "static" / "vendor"


def load_manifest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(MANIFEST.read_text())
    return data


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check(manifest: dict[str, Any]) -> list[str]:
    """Problems with the committed copies (empty: all present and as pinned), and nothing unlisted on disk."""
    problems: list[str] = []
    listed: set[Path] = set()
    for pkg in manifest["packages"]:
        for dest, pinned in pkg.get("sha256", {}).items():
            path = VENDOR_DIR / dest
            listed.add(path)
            if not path.is_file():
                problems.append(f"{pkg['name']}: missing {dest}")
            elif sha256(path.read_bytes()) != pinned:
                problems.append(f"{pkg['name']}: {dest} differs from its pinned sha256")
        if set(pkg.get("sha256", {})) != set(pkg["files"].values()):
            problems.append(f"{pkg['name']}: not pinned (run `python -m api.playground.vendor pin`)")
    for path in VENDOR_DIR.rglob("*"):
        if path.is_file() and path not in listed:
            problems.append(f"unlisted file {path.relative_to(VENDOR_DIR)}")
    return problems


def _npm_pack(name: str, version: str, into: Path) -> Path:
    out = subprocess.run(["npm", "pack", f"{name}@{version}", "--json", "--pack-destination", str(into)],
                         capture_output=True, text=True, check=True, cwd=into)
    filename: str = json.loads(out.stdout)[0]["filename"]
    return into / filename


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def fetch(manifest: dict[str, Any], *, pin: bool) -> None:
    """Write every pinned file from its npm tarball; refuse (and write nothing of that package) on a mismatch."""
    with tempfile.TemporaryDirectory() as tmp:
        for pkg in manifest["packages"]:
            tarball = _npm_pack(pkg["name"], pkg["version"], Path(tmp))
            raw = tarball.read_bytes()
            if not pin and pkg.get("integrity") != _integrity(raw):
                sys.exit(f"{pkg['name']}@{pkg['version']}: tarball integrity differs from the pinned one")
            files: dict[str, bytes] = {}
            with tarfile.open(tarball) as tar:
                for src, dest in pkg["files"].items():
                    member = tar.extractfile(f"package/{src}")
                    if member is None:
                        sys.exit(f"{pkg['name']}: {src} is not in the tarball")
                    files[dest] = member.read()
            hashes = {dest: sha256(data) for dest, data in files.items()}
            if not pin and hashes != pkg.get("sha256"):
                sys.exit(f"{pkg['name']}@{pkg['version']}: file hashes differ from the pinned ones")
            for dest, data in files.items():
                (VENDOR_DIR / dest).parent.mkdir(parents=True, exist_ok=True)
                (VENDOR_DIR / dest).write_bytes(data)
            pkg["integrity"], pkg["sha256"] = _integrity(raw), hashes
            print(f"{pkg['name']}@{pkg['version']}: {len(files)} files")
    if pin:
        MANIFEST.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["check", "fetch", "pin"])
    args = parser.parse_args()
    manifest = load_manifest()
    if args.command == "check":
        problems = check(manifest)
        print("\n".join(problems) or "vendored files: all as pinned")
        sys.exit(1 if problems else 0)
    fetch(manifest, pin=args.command == "pin")


if __name__ == "__main__":
    main()
