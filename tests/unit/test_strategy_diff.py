"""The comparison of two strategy versions: difflib's unified diff, each line numbered as the
editor numbers it in the version it comes from."""

from __future__ import annotations

from fta.portal.views.strategies import DiffLine, diff_lines

OLD = "".join(f"line {n}\n" for n in range(1, 21))


def test_each_line_carries_its_numbers_in_both_versions() -> None:
    new = OLD.replace("line 10\n", "line ten\nline 10.5\n").replace("line 2\n", "")
    rows = diff_lines(OLD, new)
    assert [row for row in rows if row.kind in ("added", "removed")] == [
        DiffLine("removed", 2, None, "line 2"),
        DiffLine("removed", 10, None, "line 10"),
        DiffLine("added", None, 9, "line ten"),
        DiffLine("added", None, 10, "line 10.5"),
    ]
    assert [row.text for row in rows if row.kind == "hunk"] == [
        "@@ -1,5 +1,4 @@",
        "@@ -7,7 +6,8 @@",
    ]
    # Context lines: the same text, one line higher in the new version after the removal.
    assert DiffLine("same", 5, 4, "line 5") in rows
    assert DiffLine("same", 13, 13, "line 13") in rows


def test_distant_changes_are_separate_hunks_and_markup_is_kept_as_text() -> None:
    new = OLD.replace("line 1\n", "<b>line 1</b>\n").replace("line 20\n", "line 20\nline 21")
    rows = diff_lines(OLD, new)
    assert [row.text for row in rows if row.kind == "hunk"] == [
        "@@ -1,4 +1,4 @@",
        "@@ -18,3 +18,4 @@",
    ]
    assert DiffLine("added", None, 1, "<b>line 1</b>") in rows
    assert DiffLine("added", None, 21, "line 21") in rows


def test_identical_sources_have_no_lines_and_an_empty_one_counts_from_one() -> None:
    assert diff_lines(OLD, OLD) == []
    assert diff_lines("", "a\nb\n") == [
        DiffLine("hunk", None, None, "@@ -0,0 +1,2 @@"),
        DiffLine("added", None, 1, "a"),
        DiffLine("added", None, 2, "b"),
    ]
