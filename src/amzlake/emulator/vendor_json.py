"""Streaming JSON assembly for SP-API vendor documents: fixed-point numbers, row templates, truth.

Every number a vendor document prints is held as a scaled integer (money in minor units, rates in
ten-thousandths), so the printed text, the row sums and the aggregate rows agree to the last digit,
and `Truth` sums are exact Decimals of exactly what was printed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import orjson

from amzlake.emulator.documents import DocumentPlan, Truth

RATE_PLACES = 4  # rates and shares print with four decimals, as in Amazon's examples (0.1234)
BATCH_ROWS = 2000  # rows per emitted chunk: bounded memory, few syscalls


def fixed(value: int, places: int) -> str:
    """`value` / 10**places printed exactly as a JSON number (e.g. 12345, 2 -> "123.45")."""
    if places == 0:
        return str(value)
    sign = "-" if value < 0 else ""
    q, r = divmod(abs(value), 10**places)
    return f"{sign}{q}.{r:0{places}d}"


def fixed_column(values: np.ndarray, places: int) -> list[str]:
    """A column of scaled integers printed with `fixed`."""
    return [fixed(v, places) for v in values.tolist()]


def to_decimal(total: int, places: int) -> Decimal | int:
    """An exact sum of scaled integers as a Decimal (or the int itself when `places` is 0)."""
    if places == 0:
        return int(total)
    return Decimal(int(total)).scaleb(-places)


@dataclass(frozen=True)
class Col:
    """One printed field of a row: a JSON path, how it prints, and its scale.

    kind: "int" (plain integer), "fixed" (scaled integer with `places` decimals), "amount"
    (an Amount object {"amount": fixed, "currencyCode": ...} of minor units) or "str" (values are
    already JSON-encoded strings, see `encode_strings`; not summed).
    """

    path: str  # dotted for nested objects, e.g. "impressionData.impressionCount"
    kind: str = "int"
    places: int = 0


def _template(cols: Sequence[Col], currency: str, head: str) -> str:
    """A %-template for one row; `head` is the already-escaped constant prefix of the object."""
    parts: list[str] = [head] if head else []
    # Group nested paths by their first segment, preserving order.
    groups: list[tuple[str, list[Col]]] = []
    for c in cols:
        top = c.path.split(".", 1)[0]
        if "." in c.path and groups and groups[-1][0] == top:
            groups[-1][1].append(c)
        else:
            groups.append((top, [c]))
    for top, members in groups:
        if "." in members[0].path:
            inner = ",".join(_leaf(m.path.split(".", 1)[1], m, currency) for m in members)
            parts.append(f'"{top}":{{{inner}}}')
        else:
            parts.append(_leaf(top, members[0], currency))
    return "{" + ",".join(parts) + "}"


def _leaf(name: str, col: Col, currency: str) -> str:
    if col.kind == "amount":
        return f'"{name}":{{"amount":%s,"currencyCode":"{currency}"}}'
    return f'"{name}":%s'


def esc(text: str) -> str:
    """`text` as a JSON string literal, safe inside a %-template."""
    return orjson.dumps(text).decode().replace("%", "%%")


class RowWriter:
    """Formats rows of one array from numpy columns and adds what it prints to a Truth."""

    def __init__(self, array: str, cols: Sequence[Col], currency: str, truth: Truth) -> None:
        self.array = array
        self.cols = list(cols)
        self.currency = currency
        self.truth = truth
        self.rows = 0

    def rows_for(
        self, head_fields: Sequence[tuple[str, str]], values: Sequence[np.ndarray],
        per_row_head: Sequence[Sequence[str]] = (),
    ) -> list[str]:
        """Rows whose constant fields are `head_fields` (name, raw JSON) and whose numbers are
        `values` (one int64 array per column); `per_row_head` adds per-row string fields."""
        n = len(values[0]) if values else len(per_row_head[0])
        if n == 0:
            return []
        head = ",".join(f'"{k}":{v.replace("%", "%%")}' for k, v in head_fields)
        per_row_names = [name for name, _ in per_row_head] if per_row_head else []
        if per_row_names:
            extra = ",".join(f'"{name}":%s' for name in per_row_names)
            head = f"{head},{extra}" if head else extra
        tpl = _template(self.cols, self.currency, head)
        columns: list[list[str]] = [list(col) for _, col in per_row_head] if per_row_head else []
        for c, raw in zip(self.cols, values, strict=True):
            if c.kind == "str":
                columns.append(list(raw))
                continue
            arr = np.asarray(raw, dtype=np.int64)
            if c.kind == "int":
                columns.append([str(v) for v in arr.tolist()])
            else:
                columns.append(fixed_column(arr, c.places))
            total = int(arr.sum())
            key = f"{self.array}.{c.path}"
            self.truth.add(key, to_decimal(total, c.places))
        self.rows += n
        self.truth.rows += n
        counts = self.truth.details.setdefault("arrays", {})
        counts[self.array] = counts.get(self.array, 0) + n
        return [tpl % t for t in zip(*columns, strict=True)]


def encode_strings(values: Iterable[str]) -> list[str]:
    """Strings as JSON literals, ready for a row template (a "str" column)."""
    return [orjson.dumps(v).decode() for v in values]


def string_column(name: str, values: Iterable[str]) -> tuple[str, list[str]]:
    """A per-row top-level string field for `RowWriter.rows_for`."""
    return name, encode_strings(values)


def assemble(
    spec: dict[str, Any],
    arrays: Sequence[tuple[str, Callable[[], Iterator[list[str]]]]],
) -> Iterator[bytes]:
    """The document's JSON text, piece by piece: reportSpecification, then each array's rows."""
    yield b'{"reportSpecification":' + orjson.dumps(spec)
    for name, produce in arrays:
        yield b',"' + name.encode() + b'":['
        first = True
        for batch in produce():
            if not batch:
                continue
            for start in range(0, len(batch), BATCH_ROWS):
                text = ",".join(batch[start : start + BATCH_ROWS])
                yield (text if first else "," + text).encode()
                first = False
        yield b"]"
    yield b"}"


def plan(
    spec: dict[str, Any],
    arrays: Sequence[tuple[str, Callable[[], Iterator[list[str]]]]],
    truth: Truth,
) -> DocumentPlan:
    """A DocumentPlan whose truth is completed as its chunks are generated."""
    for name, _ in arrays:
        truth.details.setdefault("arrays", {})[name] = 0

    def chunks() -> Iterator[bytes]:
        yield from assemble(spec, arrays)

    return DocumentPlan(chunks(), truth)
