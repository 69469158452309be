"""A report as one self-contained HTML page, or as Markdown.

Both render the same sections. Every string that comes from data or
configuration (class names, metadata, shift names) is escaped here, cell
by cell; the page loads nothing from elsewhere and runs no script.
"""

import base64
import html
import math
import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

__all__ = ["Section", "render_html", "render_markdown"]


@dataclass(frozen=True)
class Section:
    """A part of a report: a heading, a paragraph, tables and figures.

    ``tables`` and ``figures`` are keys into the report's tables and
    figures; ``glossary`` explains column names, if any.
    """

    key: str
    title: str
    text: str
    tables: tuple[str, ...] = ()
    figures: tuple[str, ...] = ()
    glossary: Mapping[str, str] = field(default_factory=dict)
    collapsed: bool = False


def format_number(value: object) -> str:
    """A table number as text: integers whole, floats to 4 decimals."""
    if isinstance(value, numbers.Integral):
        return str(int(value))
    value = float(value)
    return "n/a" if math.isnan(value) else f"{value:.4f}"


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


# ---------------------------------------------------------------- HTML ----

CSS = """
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e;
  --line: #d1d9e0; --band: #f6f8fa; --accent: #0969da; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.55 system-ui, -apple-system, "Segoe UI",
  Roboto, sans-serif; color: var(--ink); background: #fff; }
main { max-width: 1180px; margin: 0 auto; padding: 2rem 1.5rem 4rem; }
header { border-bottom: 1px solid var(--line); margin-bottom: 1.5rem; }
h1 { font-size: 1.8rem; margin: 0 0 .3rem; }
h2 { font-size: 1.3rem; margin: 2.4rem 0 .6rem; padding-bottom: .3rem;
  border-bottom: 1px solid var(--line); }
p { margin: .4rem 0 .9rem; max-width: 75ch; }
.subtitle { color: var(--muted); margin-bottom: 1rem; }
nav { display: flex; flex-wrap: wrap; gap: .4rem 1.2rem; margin: .8rem 0; }
nav a { color: var(--accent); text-decoration: none; }
nav a:hover { text-decoration: underline; }
.table-wrap { overflow-x: auto; margin: .6rem 0 1rem; }
table { border-collapse: collapse; font-size: .92rem; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; }
th, td { padding: .35rem .75rem; border-bottom: 1px solid var(--line);
  text-align: left; vertical-align: top; }
thead th { background: var(--band); border-bottom: 2px solid var(--line); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:hover { background: var(--band); }
figure { margin: 1.2rem 0 2rem; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line);
  border-radius: 6px; }
figcaption { color: var(--muted); font-size: .9rem; margin-top: .4rem;
  max-width: 90ch; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem;
  font-size: .9rem; color: var(--muted); margin: .5rem 0 1rem; }
dt { font-family: ui-monospace, SFMono-Regular, Menlo, monospace;
  color: var(--ink); }
dd { margin: 0; }
details > summary { cursor: pointer; color: var(--accent); margin: .4rem 0; }
footer { margin-top: 3rem; color: var(--muted); font-size: .85rem; }
"""

# Defence in depth: even an unescaped string could run no script and load
# nothing, since the page allows only its own styles and inline images.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _html_cell(value: object) -> str:
    if _is_number(value):
        # The exact value rides along in the title, for the curious reader.
        return (
            f'<td class="num" title="{_esc(repr(value))}">{format_number(value)}</td>'
        )
    return f"<td>{_esc(value)}</td>"


def html_table(frame: pd.DataFrame, caption: str | None = None) -> str:
    """A DataFrame as an HTML table; the index becomes row headers."""
    corner = _esc(frame.index.name or "")
    head = "".join(f'<th scope="col">{_esc(column)}</th>' for column in frame.columns)
    rows = []
    for label, row in zip(frame.index, frame.itertuples(index=False), strict=True):
        cells = "".join(_html_cell(value) for value in row)
        rows.append(f'<tr><th scope="row">{_esc(label)}</th>{cells}</tr>')
    title = f"<caption>{_esc(caption)}</caption>" if caption else ""
    return (
        f'<div class="table-wrap"><table>{title}<thead><tr><th scope="col">'
        f"{corner}</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
        "</table></div>"
    )


def _html_glossary(glossary: Mapping[str, str]) -> str:
    items = "".join(
        f"<dt>{_esc(term)}</dt><dd>{_esc(text)}</dd>" for term, text in glossary.items()
    )
    return (
        f"<details><summary>What the columns mean</summary><dl>{items}</dl></details>"
    )


def _html_figure(name: str, png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure id="figure-{_esc(name)}"><img src="data:image/png;base64,{data}" '
        f'alt="{_esc(caption)}"><figcaption>{_esc(caption)}</figcaption></figure>'
    )


def _html_section(
    section: Section,
    tables: Mapping[str, pd.DataFrame],
    pngs: Mapping[str, bytes],
    captions: Mapping[str, str],
) -> str:
    parts = [f"<p>{_esc(section.text)}</p>"]
    parts += [html_table(tables[name]) for name in section.tables]
    if section.glossary:
        parts.append(_html_glossary(section.glossary))
    parts += [_html_figure(n, pngs[n], captions[n]) for n in section.figures]
    body = "".join(parts)
    if section.collapsed:
        body = f"<details><summary>Show</summary>{body}</details>"
    return (
        f'<section id="{_esc(section.key)}"><h2>{_esc(section.title)}</h2>'
        f"{body}</section>"
    )


def render_html(
    title: str,
    subtitle: str,
    sections: list[Section],
    tables: Mapping[str, pd.DataFrame],
    pngs: Mapping[str, bytes],
    captions: Mapping[str, str],
    footer: str,
) -> str:
    """The whole page: one HTML document with every figure embedded."""
    nav = "".join(f'<a href="#{_esc(s.key)}">{_esc(s.title)}</a>' for s in sections)
    body = "\n".join(_html_section(s, tables, pngs, captions) for s in sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{CSS}</style></head>\n"
        f"<body><main><header><h1>{_esc(title)}</h1>"
        f'<p class="subtitle">{_esc(subtitle)}</p><nav>{nav}</nav></header>\n'
        f"{body}\n<footer>{_esc(footer)}</footer></main></body></html>\n"
    )


# ------------------------------------------------------------ Markdown ----


def _md_text(value: object) -> str:
    """Text safe inside a Markdown table cell: no raw HTML, no cell breaks,
    no links, emphasis or code spans made from the data."""
    text = html.escape(str(value), quote=False)
    text = re.sub(r"([\\`*_\[\]|])", r"\\\1", text)
    return text.replace("\r", " ").replace("\n", " ")


def markdown_table(frame: pd.DataFrame) -> str:
    """A DataFrame as a GitHub-flavoured Markdown table."""
    header = [frame.index.name or "", *map(str, frame.columns)]
    aligns = ["---"] + [
        "---:" if pd.api.types.is_numeric_dtype(frame[c]) else "---"
        for c in frame.columns
    ]
    lines = [
        "| " + " | ".join(_md_text(h) for h in header) + " |",
        "| " + " | ".join(aligns) + " |",
    ]
    for label, row in zip(frame.index, frame.itertuples(index=False), strict=True):
        cells = [format_number(v) if _is_number(v) else _md_text(v) for v in row]
        lines.append(f"| {_md_text(label)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _md_section(
    section: Section, tables: Mapping[str, pd.DataFrame], captions: Mapping[str, str]
) -> str:
    parts = [f"## {section.title}", _md_text(section.text)]
    parts += [markdown_table(tables[name]) for name in section.tables]
    if section.glossary:
        parts.append(
            "\n".join(
                f"- `{term}`: {_md_text(t)}" for term, t in section.glossary.items()
            )
        )
    for name in section.figures:
        caption = _md_text(captions[name])
        parts.append(f"![{caption}](figures/{name}.png)\n\n*{caption}*")
    return "\n\n".join(parts)


def render_markdown(
    title: str,
    subtitle: str,
    sections: list[Section],
    tables: Mapping[str, pd.DataFrame],
    captions: Mapping[str, str],
    footer: str,
) -> str:
    """The report as Markdown, its figures linked from ``figures/``."""
    parts = [f"# {_md_text(title)}", _md_text(subtitle)]
    parts += [_md_section(s, tables, captions) for s in sections]
    parts.append(f"---\n\n{_md_text(footer)}")
    return "\n\n".join(parts) + "\n"
