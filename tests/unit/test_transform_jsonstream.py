"""Streaming pieces of the parsers: runs as lines and back, the prefetching worker's lifecycle."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from amzlake.transform.jsonstream import as_lines, from_lines, prefetched


def test_lines_give_back_the_exact_text_even_with_separators_inside_strings() -> None:
    rows = [{"a": 1, "name": "x},{y"}, {"a": 2, "name": "},{"}, {"a": 3, "nested": {"b": {}}}]
    text = json.dumps(rows, separators=(",", ":"))[1:-1].encode()
    lines = as_lines(text)
    assert lines is not None
    assert lines.count(b"\n") == 4  # two rows' separators and the two inside the strings
    assert from_lines(lines) == text


def test_pretty_printed_text_is_not_made_into_lines() -> None:
    text = json.dumps([{"a": 1}, {"a": 2}], indent=1)[1:-1].encode()
    assert as_lines(text) is None
    assert as_lines(b'{"a":1},\r{"a":2}') is None


def test_stopping_early_closes_the_source_in_its_worker() -> None:
    closed: list[bool] = []

    def source() -> Iterator[int]:
        try:
            yield from range(1_000)
        finally:
            closed.append(True)

    # Still referenced elsewhere (as TableRows.batches is), so only an explicit close ends it.
    src = source()
    items = prefetched(src)
    assert [next(items), next(items)] == [0, 1]
    items.close()  # type: ignore[attr-defined]
    assert closed == [True]
    assert src.gi_frame is None


def test_items_then_the_source_error_arrive_in_order() -> None:
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("bad row 3")

    got: list[int] = []
    with pytest.raises(ValueError, match="bad row 3"):
        for item in prefetched(source()):
            got.append(item)
    assert got == [1, 2]
