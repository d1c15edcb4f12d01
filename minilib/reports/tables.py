"""Tables in the book: rows of dicts shown as an HTML table with headers in a notebook (so in the rendered page, where
a wide printed table would be cut off by the column), and as aligned text when printed.

    from minilib.reports.tables import Table
    Table([{"layer": "conv1", "weights": 500}], [("layer", "layer"), ("weights", "weights")], "LeNet")
"""
from __future__ import annotations

import dataclasses
import html


def _cell(row: dict, key: str) -> str:
    value = row[key]
    if key.startswith(("gap", "delta")):        # differences, in the unit of their column
        return "" if value is None else f"{value:+.2f}"
    return str(value)


def format_rows(rows: list, columns: list) -> str:
    """Aligned text table; ``columns`` = [(header, key), ...]; a key starting with "gap" or "delta" prints as a
    signed difference with two decimals, any other value with ``str``."""
    table = [[header for header, _ in columns]] + [[_cell(row, key) for _, key in columns] for row in rows]
    widths = [max(len(line[k]) for line in table) for k in range(len(columns))]
    lines = ["  ".join(text.ljust(width) if k == 0 else text.rjust(width)
                       for k, (text, width) in enumerate(zip(line, widths))).rstrip() for line in table]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class Table:
    """Rows shown as a table: an HTML table in a notebook (and so in the book, where a wide text table would be cut
    off by the page's column), aligned text (:func:`format_rows`) when printed. ``columns`` = [(header, key), ...];
    ``wrap``: cells of prose that may break over lines (numbers never do)."""
    rows: list
    columns: list
    title: str = ""
    wrap: bool = False

    def __str__(self) -> str:
        return (self.title + "\n" if self.title else "") + format_rows(self.rows, self.columns)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        # the first column names the row and may wrap when the page is too narrow for it; the others are numbers,
        # right-aligned as in the text table and never wrapped (a wrapped "99.24 ± 0.03 (3 seeds)" reads badly); a
        # table of prose (wrap) is left-aligned and wraps. Headers always may wrap: a long header over a column of
        # short numbers would otherwise set the table's width. A table still wider than the page scrolls.
        cell = "padding:0.1em 0.5em;vertical-align:top;text-align:"
        others = "left" if self.wrap else "right"
        space = "normal" if self.wrap else "nowrap"
        align = [f"{cell}left"] + [f"{cell}{others}"] * (len(self.columns) - 1)
        spaces = ["normal"] + [space] * (len(self.columns) - 1)
        head = "".join(f'<th style="{a};white-space:normal">{html.escape(header)}</th>'
                       for a, (header, _) in zip(align, self.columns))
        body = "".join("<tr>" + "".join(f'<td style="{a};white-space:{w}">{html.escape(_cell(row, key))}</td>'
                                        for a, w, (_, key) in zip(align, spaces, self.columns)) + "</tr>"
                       for row in self.rows)
        caption = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        return (f'<div style="overflow-x:auto">'
                f'<table class="minilib-table" style="font-size:0.85em">'
                f'{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>')
