"""Record real wheel metadata from PyPI as small JSON fixtures (tests/fixtures/wheels/).

    python tools/record_wheels.py sglang==0.5.23 open-webui==0.12.4 ...

For each NAME==VERSION it reads PyPI's JSON API (https://pypi.org/pypi/NAME/json: Requires-Python,
Requires-Dist of the newest release, every release's files) and the simple index
(https://pypi.org/simple/NAME/, PEP 691 JSON: filenames, sha256, requires-python, yanked, every
version). When VERSION is not the newest, Requires-Dist comes from the wheel's own METADATA
(`pip download --no-deps` of its smallest wheel). Writes NAME-VERSION.json with the command and
the date.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "wheels"


def _get(url: str, accept: str = "application/json") -> Any:
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def _requires_dist_from_wheel(name: str, version: str, filename: str) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                *("-m", "pip", "download", "--no-deps", "--no-cache-dir", "-q"),
                *("--only-binary=:all:", "--no-index"),
                *("--find-links", f"https://pypi.org/simple/{name}/"),
                *("-d", tmp, f"{name}=={version}"),
            ],
            check=True,
        )
        wheel = Path(tmp) / filename
        with zipfile.ZipFile(wheel) as archive:
            meta = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
            text = archive.read(meta).decode()
    return [
        line.split(":", 1)[1].strip()
        for line in text.splitlines()
        if line.startswith("Requires-Dist:")
    ]


def record(spec: str) -> Path:
    name, _, version = spec.partition("==")
    project = _get(f"https://pypi.org/pypi/{name}/json")
    simple = _get(f"https://pypi.org/simple/{name}/", "application/vnd.pypi.simple.v1+json")
    files = [
        {
            "filename": f["filename"],
            "sha256": f["hashes"]["sha256"],
            "size": f["size"],
            "requires_python": f.get("requires-python"),
            "yanked": bool(f.get("yanked")),
            "upload_time": f.get("upload-time"),
        }
        for f in simple["files"]
        if f["filename"].endswith(".whl") and f"-{version}-" in f["filename"]
    ]
    if not files:
        raise SystemExit(f"{name}=={version}: no wheels on PyPI")
    latest = project["info"]["version"]
    if version == latest:
        requires_dist = project["info"]["requires_dist"] or []
    else:
        smallest = min(files, key=lambda f: f["size"])["filename"]
        requires_dist = _requires_dist_from_wheel(name, version, smallest)
    document = {
        "name": name,
        "version": version,
        "recorded": datetime.date.today().isoformat(),
        "command": f"python tools/record_wheels.py {spec}",
        "sources": [f"https://pypi.org/pypi/{name}/json", f"https://pypi.org/simple/{name}/"],
        "latest": latest,
        "requires_python": files[0]["requires_python"],
        "requires_dist": requires_dist,
        "files": sorted(files, key=lambda f: f["filename"]),
        "versions": simple["versions"],
    }
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}-{version}.json"
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return path


def main(argv: list[str]) -> int:
    for spec in argv:
        print(record(spec))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
