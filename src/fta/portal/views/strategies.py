"""The client's strategies: the list, writing or uploading one, saving new versions of it
(each an immutable version), reading any version and comparing two of them, deleting."""

from __future__ import annotations

import difflib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import File, Form, Query, Request, UploadFile
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from fta.accounts.deps import PagePrincipalDep, PageTenantDep
from fta.accounts.service import get_tenant
from fta.errors import Conflict, DomainError
from fta.strategies import service
from fta.strategies.models import Strategy
from fta.strategies.validation import (
    MAX_SOURCE_BYTES,
    BadName,
    ClassMissing,
    InvalidStrategy,
    SourceNotPython,
    SourceNotText,
    SourceTooLarge,
)
from fta.web import i18n, pages
from fta.web.deps import ClientIpDep, SessionDep

router = pages.page_router("/app/strategies")

# No length bound of their own: the body's is the limit, and the checks refuse a long name
# in the form, which keeps the client's code.
NameField = Annotated[str, Form()]
SourceField = Annotated[str, Form()]
FileField = Annotated[UploadFile | None, File()]
BaseField = Annotated[int, Form(ge=0)]


def _size(fmt: i18n.Formats, _: Callable[[str], str], size: int) -> str:
    """A size in bytes as a reader says it: bytes, KiB, MiB."""
    if size < 1024:
        return _("%(n)s bytes") % {"n": fmt.number(size, 0)}
    if size < 1024 * 1024:
        return _("%(n)s KiB") % {"n": fmt.number(size / 1024, 1)}
    return _("%(n)s MiB") % {"n": fmt.number(size / (1024 * 1024), 1)}


# The form's refusals ------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    message: str
    # The source's line at fault (from 1), which the editor marks.
    line: int | None = None


def _refusal(request: Request, error: DomainError) -> Refusal:
    """What the form says of a refused save, in the visitor's language."""
    _ = pages.gettext_for(request)
    fmt = i18n.Formats(pages.locale_of(request))
    line = error.line if isinstance(error, InvalidStrategy) else None
    if isinstance(error, BadName):
        message = _(
            "The name must be the strategy's Python class name: letters, digits and _, "
            "not starting with a digit, at most 100 characters."
        )
    elif isinstance(error, SourceTooLarge):
        message = _("The source takes %(size)s; a strategy takes at most %(limit)s.") % {
            "size": _size(fmt, _, error.size),
            "limit": _size(fmt, _, MAX_SOURCE_BYTES),
        }
    elif isinstance(error, SourceNotText):
        message = _(
            "Line %(line)s holds a NUL character: this is not a text file. "
            "Upload the strategy's .py file."
        ) % {"line": line}
    elif isinstance(error, SourceNotPython):
        if line is None:
            message = _("This is not valid Python: %(reason)s.") % {"reason": error.message}
        else:
            message = _("Line %(line)s: this is not valid Python (%(reason)s).") % {
                "line": line,
                "reason": error.message,
            }
    elif isinstance(error, ClassMissing):
        if error.classes:
            message = _(
                "The source defines no class named %(name)s (it defines %(found)s): "
                "a strategy's name is its class name."
            ) % {"name": error.name, "found": ", ".join(error.classes)}
        else:
            message = _(
                "The source defines no class named %(name)s: a strategy's name is its class name."
            ) % {"name": error.name}
    elif isinstance(error, service.StorageFull):
        message = _(
            "Your strategies fill your plan's storage: delete versions or strategies you no "
            "longer need, or choose a plan that stores more."
        )
    elif isinstance(error, service.TooManyUploads):
        message = _(
            "You saved many versions within a minute: wait %(seconds)s s, then save again."
        ) % {"seconds": error.retry_after}
    elif isinstance(error, Conflict):
        message = _("You already have a strategy of this name: open it to save a new version.")
    else:
        message = error.detail
    return Refusal(message, line)


def _uploaded_source(request: Request, upload: UploadFile | None) -> tuple[str | None, str | None]:
    """The text of the chosen file (None when none was chosen), or why it cannot be used."""
    if upload is None or not upload.filename:
        return None, None
    _ = pages.gettext_for(request)
    data = upload.file.read(MAX_SOURCE_BYTES + 1)
    if not data:
        return None, _("The chosen file is empty.")
    if len(data) > MAX_SOURCE_BYTES:
        fmt = i18n.Formats(pages.locale_of(request))
        limit = _size(fmt, _, MAX_SOURCE_BYTES)
        return None, _("The chosen file is larger than %(limit)s, a strategy's limit.") % {
            "limit": limit
        }
    try:
        # A byte order mark is no part of Python's text.
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        return None, _("The chosen file is not UTF-8 text: save it as UTF-8, then upload it.")


def _see(session: Session, target: str) -> RedirectResponse:
    """Sends the browser to the page showing what this request saved, once it is committed:
    the request's own transaction ends only after its answer is sent, and the browser asks
    for the next page at once."""
    session.commit()
    return RedirectResponse(target, status_code=303)


def _typed_source(source: str) -> str:
    """A browser sends a text area's lines ending in CR LF: the editor's lines end in LF."""
    return source.replace("\r\n", "\n")


def _form(
    request: Request,
    *,
    strategy: Strategy | None,
    name: str,
    source: str,
    base: int,
    refusal: Refusal | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "strategy": strategy,
        "name": name,
        "source": source,
        "base": base,
        "error": refusal.message if refusal else None,
        "error_line": refusal.line if refusal else None,
        "max_bytes": MAX_SOURCE_BYTES,
    }
    return pages.render(request, "strategies/form.html", context, status_code=status_code)


# The list, creating -------------------------------------------------------------------------


@router.get("")
def strategy_list(
    request: Request,
    session: SessionDep,
    tenant_id: PageTenantDep,
    deleted: Annotated[bool, Query()] = False,
) -> Response:
    _ = pages.gettext_for(request)
    fmt = i18n.Formats(pages.locale_of(request))
    used = service.storage(session, get_tenant(session, tenant_id))
    context = {
        "strategies": service.list_strategies(session, tenant_id),
        "storage": used,
        "storage_bytes": _size(fmt, _, used.bytes),
        "storage_max_bytes": _size(fmt, _, used.max_bytes),
        "deleted": deleted,
    }
    return pages.render(request, "strategies/list.html", context)


@router.get("/new")
def new_form(request: Request, tenant_id: PageTenantDep) -> Response:
    return _form(request, strategy=None, name="", source="", base=0)


@router.post("/new")
def create(
    request: Request,
    session: SessionDep,
    principal: PagePrincipalDep,
    tenant_id: PageTenantDep,
    ip: ClientIpDep,
    name: NameField = "",
    source: SourceField = "",
    file: FileField = None,
) -> Response:
    _ = pages.gettext_for(request)
    name, typed = name.strip(), _typed_source(source)
    uploaded, unusable = _uploaded_source(request, file)
    text = typed if uploaded is None else uploaded
    if unusable is not None:
        refusal = Refusal(unusable)
    elif not text.strip():
        refusal = Refusal(_("Write the strategy's Python source, or choose its .py file."))
    else:
        try:
            strategy, _version = service.create_strategy(
                session, principal, tenant_id, name=name, source=text, ip=ip
            )
        except (InvalidStrategy, Conflict, service.TooManyUploads) as error:
            refusal = _refusal(request, error)
        else:
            return _see(session, f"/app/strategies/{strategy.id}?saved=1")
    return _form(
        request, strategy=None, name=name, source=text, base=0, refusal=refusal, status_code=422
    )


# One strategy ---------------------------------------------------------------------------------


@router.get("/{strategy_id:uuid}")
def detail(
    request: Request,
    session: SessionDep,
    tenant_id: PageTenantDep,
    strategy_id: uuid.UUID,
    saved: Annotated[int | None, Query()] = None,
    unchanged: Annotated[int | None, Query()] = None,
    base: Annotated[int | None, Query()] = None,
    removed: Annotated[int | None, Query()] = None,
    kept: Annotated[int | None, Query()] = None,
) -> Response:
    _ = pages.gettext_for(request)
    fmt = i18n.Formats(pages.locale_of(request))
    strategy = service.get_strategy(session, tenant_id, strategy_id)
    versions = service.list_versions(session, tenant_id, strategy_id)
    context = {
        "strategy": strategy,
        "latest": service.latest_version(session, strategy),
        "versions": versions,
        "sizes": {stored.version: _size(fmt, _, stored.bytes) for stored in versions},
        "saved": saved,
        "unchanged": unchanged,
        # Versions saved from elsewhere between the editor's opening and this save.
        "meanwhile": base if saved is not None and base is not None and base < saved - 1 else None,
        "removed": removed,
        "kept": kept,
    }
    return pages.render(request, "strategies/detail.html", context)


@router.get("/{strategy_id:uuid}/edit")
def edit_form(
    request: Request, session: SessionDep, tenant_id: PageTenantDep, strategy_id: uuid.UUID
) -> Response:
    strategy = service.get_strategy(session, tenant_id, strategy_id)
    latest = service.latest_version(session, strategy)
    return _form(
        request,
        strategy=strategy,
        name=strategy.name,
        source=latest.source,
        base=strategy.latest_version,
    )


@router.post("/{strategy_id:uuid}/edit")
def save_version(
    request: Request,
    session: SessionDep,
    principal: PagePrincipalDep,
    tenant_id: PageTenantDep,
    ip: ClientIpDep,
    strategy_id: uuid.UUID,
    base: BaseField = 0,
    source: SourceField = "",
    file: FileField = None,
) -> Response:
    _ = pages.gettext_for(request)
    strategy = service.get_strategy(session, tenant_id, strategy_id)
    before = strategy.latest_version
    uploaded, unusable = _uploaded_source(request, file)
    text = _typed_source(source) if uploaded is None else uploaded
    if unusable is not None:
        refusal = Refusal(unusable)
    elif not text.strip():
        refusal = Refusal(_("Write the strategy's Python source, or choose its .py file."))
    else:
        try:
            version = service.add_version(
                session, principal, tenant_id, strategy_id, source=text, ip=ip
            )
        except (InvalidStrategy, Conflict, service.TooManyUploads) as error:
            refusal = _refusal(request, error)
        else:
            target = f"/app/strategies/{strategy_id}"
            if version.version == before:
                return _see(session, f"{target}?unchanged={before}")
            return _see(session, f"{target}?saved={version.version}&base={base}")
    return _form(
        request,
        strategy=strategy,
        name=strategy.name,
        source=text,
        base=base,
        refusal=refusal,
        status_code=422,
    )


@router.post("/{strategy_id:uuid}/delete")
def delete(
    session: SessionDep,
    principal: PagePrincipalDep,
    tenant_id: PageTenantDep,
    ip: ClientIpDep,
    strategy_id: uuid.UUID,
) -> Response:
    service.hide_strategy(session, principal, tenant_id, strategy_id, ip)
    return _see(session, "/app/strategies?deleted=true")


# Versions -------------------------------------------------------------------------------------


@router.get("/{strategy_id:uuid}/versions/{number:int}")
def version_page(
    request: Request,
    session: SessionDep,
    tenant_id: PageTenantDep,
    strategy_id: uuid.UUID,
    number: int,
) -> Response:
    _ = pages.gettext_for(request)
    fmt = i18n.Formats(pages.locale_of(request))
    strategy = service.get_strategy(session, tenant_id, strategy_id)
    version = service.get_version(session, tenant_id, strategy_id, number)
    stored = service.list_versions(session, tenant_id, strategy_id)
    context = {
        "strategy": strategy,
        "version": version,
        "size": _size(fmt, _, len(version.source.encode("utf-8"))),
        # The version before it that is still stored (deleted ones leave gaps).
        "previous": max((v.version for v in stored if v.version < number), default=None),
    }
    return pages.render(request, "strategies/version.html", context)


@router.post("/{strategy_id:uuid}/versions/{number:int}/delete")
def delete_version(
    session: SessionDep,
    principal: PagePrincipalDep,
    tenant_id: PageTenantDep,
    ip: ClientIpDep,
    strategy_id: uuid.UUID,
    number: int,
) -> Response:
    target = f"/app/strategies/{strategy_id}"
    try:
        service.delete_version(session, principal, tenant_id, strategy_id, number, ip)
    except Conflict:
        # The current version, or one a job or bot ran meanwhile: nothing was deleted.
        session.rollback()
        return _see(session, f"{target}?kept={number}")
    return _see(session, f"{target}?removed={number}")


# Comparing two versions -----------------------------------------------------------------------


@dataclass(frozen=True)
class DiffLine:
    # "hunk" (where the next lines are), "same", "added" or "removed"
    kind: str
    old: int | None
    new: int | None
    text: str


HUNK = re.compile(r"@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")


def _lines(source: str) -> list[str]:
    """The source's lines as the editor numbers them (a final newline ends the last one)."""
    lines = source.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def diff_lines(old: str, new: str) -> list[DiffLine]:
    """A unified diff (difflib's, three lines of context) with each line's numbers in the two
    versions."""
    rows: list[DiffLine] = []
    output = difflib.unified_diff(_lines(old), _lines(new), lineterm="", n=3)
    old_no = new_no = 0
    for index, line in enumerate(output):
        if index < 2:  # the two file headers
            continue
        hunk = HUNK.match(line)
        if hunk is not None:
            # (A side without lines in the hunk names the line before: none is counted.)
            old_no, new_no = int(hunk[1]), int(hunk[2])
            rows.append(DiffLine("hunk", None, None, line))
        elif line.startswith("+"):
            rows.append(DiffLine("added", None, new_no, line[1:]))
            new_no += 1
        elif line.startswith("-"):
            rows.append(DiffLine("removed", old_no, None, line[1:]))
            old_no += 1
        else:
            rows.append(DiffLine("same", old_no, new_no, line[1:]))
            old_no += 1
            new_no += 1
    return rows


@router.get("/{strategy_id:uuid}/diff")
def diff(
    request: Request,
    session: SessionDep,
    tenant_id: PageTenantDep,
    strategy_id: uuid.UUID,
    old: Annotated[int | None, Query(alias="from")] = None,
    new: Annotated[int | None, Query(alias="to")] = None,
) -> Response:
    strategy = service.get_strategy(session, tenant_id, strategy_id)
    versions = service.list_versions(session, tenant_id, strategy_id)
    if new is None:
        new = strategy.latest_version
    if old is None:
        old = max((v.version for v in versions if v.version < new), default=new)
    before = service.get_version(session, tenant_id, strategy_id, old)
    after = service.get_version(session, tenant_id, strategy_id, new)
    rows = diff_lines(before.source, after.source)
    context = {
        "strategy": strategy,
        "versions": versions,
        "before": before,
        "after": after,
        "rows": rows,
        "added": sum(1 for row in rows if row.kind == "added"),
        "removed": sum(1 for row in rows if row.kind == "removed"),
    }
    return pages.render(request, "strategies/diff.html", context)
