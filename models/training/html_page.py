"""One self-contained HTML page from a report's Markdown (the evaluation report and the site
audit both write one): headings, bullets, tables, the red caveat line, plots embedded, so
the page travels as one file and needs no Markdown library."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure  # object API: no pyplot state, no display backend


def markdown_page(
    markdown: str, folder: Path, plots: list[str], title: str, width: str = "70em"
) -> str:
    """``plots``: PNG files in ``folder``, embedded after the text (the Markdown's own image
    lines are left out: they point at files beside a .md)."""
    body = []
    table: list[str] = []
    for line in markdown.splitlines():
        if line.startswith("|"):
            if not line.startswith("| ---"):
                cells = [html.escape(c.strip()) for c in line.strip("|").split("|")]
                tag = "th" if not table else "td"
                table.append("<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>")
            continue
        if table:
            body.append("<table>" + "".join(table) + "</table>")
            table = []
        text = html.escape(line).replace("**", "")
        if line.startswith("# "):
            body.append(f"<h1>{text[2:]}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{text[3:]}</h2>")
        elif line.startswith("- "):
            body.append(f"<p>&bull; {text[2:]}</p>")
        elif line.startswith("**"):
            body.append(f'<p class="caveat">{text}</p>')
        elif line.startswith("!["):
            continue
        elif line:
            body.append(f"<p>{text}</p>")
    if table:
        body.append("<table>" + "".join(table) + "</table>")
    for name in plots:
        data = base64.b64encode((folder / name).read_bytes()).decode("ascii")
        body.append(f'<p><img alt="{name}" src="data:image/png;base64,{data}"></p>')
    style = (
        f"body{{font-family:sans-serif;max-width:{width};margin:2em auto}}"
        "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.3em .6em}"
        ".caveat{color:#b00;font-weight:bold}img{max-width:100%}"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{style}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def titled_figure(title: str, caption: str, size: tuple[float, float] = (5.5, 5)) -> Figure:
    """A report figure whose heading carries the caption and the report's caveat line."""
    figure = Figure(figsize=size)
    figure.suptitle(f"{caption}\n{title}" if title else caption, fontsize=9, color="black")
    return figure


def write_report_files(
    folder: Path,
    style: str,
    plots: dict[str, Figure],
    figures: dict[str, Any],
    markdown: Callable[[list[str]], str],
    page: Callable[[list[str]], str],
) -> Path:
    """Save the plots and ``figures.json``, then ``report.md`` (``markdown`` of the plot
    names) or the self-contained ``report.html`` (``page`` of them); returns the report."""
    if style not in {"html", "md"}:
        raise ValueError("style is 'html' or 'md'")
    folder.mkdir(parents=True, exist_ok=True)
    for name, figure in plots.items():
        figure.savefig(folder / name, dpi=110, bbox_inches="tight")
    (folder / "figures.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    if style == "md":
        path = folder / "report.md"
        path.write_text(markdown(list(plots)), encoding="utf-8")
    else:
        path = folder / "report.html"
        path.write_text(page(list(plots)), encoding="utf-8")
    return path
