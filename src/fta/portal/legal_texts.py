"""The legal pages' texts (mentions légales, CGV, politique de confidentialité): the operator's
own files in FTA_LEGAL_DIR when present, else the defaults shipped in `legal/`, with the
seller's identity (FTA_SELLER_*) filled in.

A text is plain lines: `# ` starts a section, `- ` a list item, a blank line ends a paragraph.
No markup is interpreted: the template escapes every word, so an operator's file can hold
nothing that runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from string import Template

from fta.settings import Settings

PAGES = ("notice", "terms", "privacy")
DEFAULTS = Path(__file__).parent / "legal"


@dataclass(frozen=True)
class Block:
    kind: str  # "heading", "paragraph" or "list"
    lines: tuple[str, ...]


def _source(page: str, locale: str, settings: Settings) -> str:
    for directory in (Path(settings.legal_dir) if settings.legal_dir else None, DEFAULTS):
        if directory is None:
            continue
        for name in (f"{page}.{locale}.md", f"{page}.fr.md"):
            path = directory / name
            if path.is_file():
                return path.read_text(encoding="utf-8")
    raise LookupError(f"no text for the legal page {page!r}")


def _identity(settings: Settings) -> dict[str, str]:
    return {
        "seller_name": settings.seller_name,
        "seller_legal_form": settings.seller_legal_form,
        "seller_share_capital": settings.seller_share_capital,
        "seller_registry": settings.seller_registry,
        "seller_siren": settings.seller_siren,
        "seller_vat_number": settings.seller_vat_number,
        "seller_address": settings.seller_address,
        "seller_postcode": settings.seller_postcode,
        "seller_city": settings.seller_city,
        "seller_email": settings.seller_email,
        "late_penalty": settings.invoice_late_penalty,
    }


def blocks(page: str, locale: str, settings: Settings) -> list[Block]:
    text = Template(_source(page, locale, settings)).safe_substitute(_identity(settings))
    found: list[Block] = []
    pending: list[str] = []
    kind = ""

    def close() -> None:
        nonlocal pending, kind
        if pending:
            found.append(Block(kind, tuple(pending)))
        pending, kind = [], ""

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            close()
        elif line.startswith("# "):
            close()
            found.append(Block("heading", (line[2:].strip(),)))
        elif line.startswith("- "):
            if kind != "list":
                close()
                kind = "list"
            pending.append(line[2:].strip())
        else:
            if kind != "paragraph":
                close()
                kind = "paragraph"
            pending.append(line)
    close()
    return found


def is_placeholder(settings: Settings) -> bool:
    """The seller's identity is not filled in yet (a development installation)."""
    return "placeholder" in settings.seller_name.lower()
