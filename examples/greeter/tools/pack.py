"""Packs the build outputs with the standard library only (no zip/tar binaries needed).

    python3 tools/pack.py zip dist/greeter.zip greeter.py    # runnable: python3 dist/greeter.zip Ada
    python3 tools/pack.py tar dist/greeter-config.tar.gz config

Archives are reproducible: fixed timestamps, sorted entries.
"""

from __future__ import annotations

import sys
import tarfile
import zipfile
from pathlib import Path

MAIN = "import sys\nimport greeter\nsys.exit(greeter.main())\n"


def pack_zip(out: Path, sources: list[str]) -> None:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        entries = [("__main__.py", MAIN.encode())] + [(s, Path(s).read_bytes()) for s in sorted(sources)]
        for name, data in entries:
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)


def pack_tar(out: Path, sources: list[str]) -> None:
    def normalize(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
        return info

    files = sorted(p for s in sources for p in [Path(s), *sorted(Path(s).rglob("*"))] if p.is_file())
    with tarfile.open(out, "w:gz") as archive:
        for path in files:
            archive.add(path, filter=normalize)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[0] not in ("zip", "tar"):
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[1])
    out.parent.mkdir(parents=True, exist_ok=True)
    (pack_zip if argv[0] == "zip" else pack_tar)(out, argv[2:])
    print(f"wrote {out} ({out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
