"""A small document model rendered to Markdown and to self-contained HTML from the same sections.

A report is a list of :class:`Section` (title, paragraphs, tables, images); ``to_markdown`` and
``to_html`` render it, so the two files never disagree. Images are PNG paths relative to the
report's folder; the HTML embeds them (base64) so it can be mailed or opened anywhere.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Table", "Section", "to_markdown", "to_html"]


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    align_right: set[int] = field(default_factory=set)  # column indices holding numbers


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    images: list[tuple[str, str]] = field(default_factory=list)  # (relative PNG path, caption)
    level: int = 2


def _md_table(t: Table) -> list[str]:
    rule = ["---:" if i in t.align_right else "---" for i in range(len(t.headers))]
    lines = ["| " + " | ".join(t.headers) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in t.rows]
    return lines


def to_markdown(title: str, sections: list[Section]) -> str:
    lines = [f"# {title}", ""]
    for s in sections:
        lines += ["#" * s.level + " " + s.title, ""]
        for p in s.paragraphs:
            lines += [p, ""]
        for t in s.tables:
            lines += [*_md_table(t), ""]
        for path, caption in s.images:
            lines += [f"![{caption}]({path})", ""]
    return "\n".join(lines).rstrip() + "\n"


def _html_table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in t.headers)
    body = "".join(
        "<tr>" + "".join(f'<td class="{"num" if i in t.align_right else ""}">{html.escape(c)}</td>' for i, c in enumerate(row)) + "</tr>"
        for row in t.rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def to_html(title: str, sections: list[Section], folder: Path) -> str:
    """The sections as one HTML page; images are read from ``folder`` and embedded."""
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;max-width:70em;margin:2em auto;}}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:.3em .6em}"
        "td.num{text-align:right;font-variant-numeric:tabular-nums}img{max-width:100%}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for s in sections:
        parts.append(f"<h{s.level}>{html.escape(s.title)}</h{s.level}>")
        parts += [f"<p>{html.escape(p)}</p>" for p in s.paragraphs]
        parts += [_html_table(t) for t in s.tables]
        for path, caption in s.images:
            file = folder / path
            if file.exists():
                data = base64.b64encode(file.read_bytes()).decode("ascii")
                parts.append(f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                             f"<figcaption>{html.escape(caption)}</figcaption></figure>")
            else:
                parts.append(f"<p><em>missing image {html.escape(path)}</em></p>")
    parts.append("</body></html>")
    return "\n".join(parts)
