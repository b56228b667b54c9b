"""Answers a browser saves as a file rather than shows."""

from __future__ import annotations

from starlette.responses import Response


def csv_attachment(text: str, filename: str) -> Response:
    """`text` as a UTF-8 CSV file named `filename` (a name the caller makes, never the
    client's)."""
    return Response(
        text.encode(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
