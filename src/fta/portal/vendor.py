"""Script libraries the pages use, served from our origin out of Debian's packages
(libjs-chart.js, libjs-codemirror), each with its licence: no CDN, and the operating
system's security updates reach them.

Only the files listed here are served; the image installs the packages (images/app).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from starlette.responses import FileResponse

JAVASCRIPT = Path("/usr/share/javascript")
DOC = Path("/usr/share/doc")

# name under /static/vendor/ → (file, media type)
FILES: dict[str, tuple[Path, str]] = {
    "chart.min.js": (JAVASCRIPT / "chart.js/chart.min.js", "text/javascript"),
    "chart.js.LICENSE": (DOC / "libjs-chart.js/copyright", "text/plain"),
    "codemirror.js": (JAVASCRIPT / "codemirror/lib/codemirror.js", "text/javascript"),
    "codemirror.css": (JAVASCRIPT / "codemirror/lib/codemirror.css", "text/css"),
    "codemirror-python.js": (JAVASCRIPT / "codemirror/mode/python/python.js", "text/javascript"),
    "codemirror-diff.js": (JAVASCRIPT / "codemirror/mode/diff/diff.js", "text/javascript"),
    "codemirror.LICENSE": (DOC / "libjs-codemirror/copyright", "text/plain"),
}

router = APIRouter(include_in_schema=False)


@router.get("/static/vendor/{name}")
def vendor_file(name: str) -> FileResponse:
    if name not in FILES:
        raise HTTPException(404, "no such file")
    path, media_type = FILES[name]
    if not path.is_file():
        raise HTTPException(404, f"{path} is missing: install the Debian package that ships it")
    return FileResponse(
        path, media_type=media_type, headers={"cache-control": "public, max-age=86400"}
    )
