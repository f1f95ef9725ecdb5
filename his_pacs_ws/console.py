"""Readable tables for the command line, aligned for Chinese text (two columns a glyph)."""

from __future__ import annotations

import unicodedata
from datetime import date, datetime, time, tzinfo
from typing import Iterable, Sequence


def width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def clip(text: str, limit: int) -> str:
    if width(text) <= limit:
        return text
    out, used = [], 0
    for ch in text:
        w = width(ch)
        if used + w > limit - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, limits: dict[int, int] | None = None) -> str:
    limits = limits or {}
    cells = [[clip(str(c), limits.get(i, 10_000)) for i, c in enumerate(row)] for row in rows]
    widths = [max([width(h)] + [width(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values):
        return "  ".join(v + " " * (w - width(v)) for v, w in zip(values, widths)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule] + [line(r) for r in cells])


def when(value: datetime | None, tz: tzinfo, timespec: str = "minutes") -> str:
    """A moment in the hospital's zone, with its offset: 2026-11-26 09:00+08:00."""
    return value.astimezone(tz).isoformat(sep=" ", timespec=timespec) if value else ""


def csv_text(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """CSV for spreadsheets: a byte-order mark, so that Excel reads the Chinese as UTF-8."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers)
    # a cell a spreadsheet would run as a formula (=, +, -, @) is kept as text
    writer.writerows([["'" + c if c[:1] in ("=", "+", "-", "@") else c for c in map(str, row)] for row in rows])
    return "\ufeff" + out.getvalue()


def parse_moment(text: str, tz: tzinfo) -> datetime:
    """A date (midnight, hospital time) or an ISO date-time (hospital time unless an offset)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (2026-11-01) or date-time (2026-11-01T08:00)") from None
    if len(text) == 10:
        moment = datetime.combine(date.fromisoformat(text), time())
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)
