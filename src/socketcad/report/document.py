"""A report as data (sections of paragraphs, tables and figures) and its two files: one self-contained HTML
page (images embedded as data URIs: it can be mailed or attached to a record as it is) and a PDF of the same
page.

The PDF comes from WeasyPrint, not from a browser's print-to-PDF: it is a library (no browser process to
install or drive on a clinic's machine or in ``make demo``), it implements paged-media CSS (page size,
breaks, running page numbers), and its output is the same on every machine.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from socketcad.geometry import io

__all__ = ["Figure", "Report", "Section", "Table", "Written", "html_text", "pdf_bytes", "write_report"]


@dataclass(frozen=True)
class Figure:
    """A PNG picture, its caption (what it shows, with units) and its file stem (``name``.png if kept)."""

    name: str
    png: bytes
    caption: str

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass(frozen=True)
class Table:
    """Rows of cells under a header (units in the header); ``flagged``: rows to highlight (indices)."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""
    flagged: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Section:
    """A titled part of the report: paragraphs, then tables, then figures (``wide``: one figure a row)."""

    title: str
    paragraphs: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()
    figures: tuple[Figure, ...] = ()
    wide: bool = False
    notes: tuple[str, ...] = ()  # validated / estimate statements, shown apart from the results


@dataclass(frozen=True)
class Report:
    """A whole report: its title, the identifiers shown on every page (no patient names), and sections."""

    title: str
    reference: str
    subtitle: str
    sections: tuple[Section, ...]
    facts: tuple[tuple[str, str], ...] = field(default=())  # (label, value) under the title

    @property
    def figures(self) -> list[Figure]:
        return [figure for section in self.sections for figure in section.figures]


def html_text(report: Report) -> str:
    """The report as one self-contained HTML page (Jinja2, every value escaped)."""
    import jinja2

    template = resources.files("socketcad.report").joinpath("report.html.j2").read_text(encoding="utf-8")
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return environment.from_string(template).render(report=report)


def pdf_bytes(html: str) -> tuple[bytes, int]:
    """The PDF of a report's HTML page (WeasyPrint; A4, numbered pages) and its number of pages."""
    import logging

    from weasyprint import HTML

    logging.getLogger("fontTools").setLevel(logging.WARNING)  # font subsetting chatter
    document = HTML(string=html, base_url=None).render()
    return document.write_pdf(), len(document.pages)


@dataclass(frozen=True)
class Written:
    """The files a report was written to (the PDF's None when not asked) and the PDF's page count."""

    html: Path
    pdf: Path | None
    pages: int


def write_report(report: Report, html_path: Path, pdf_path: Path | None) -> Written:
    """Write the HTML page and, if ``pdf_path``, its PDF: both or neither (each to a temporary file first,
    renamed when both are made)."""
    html = html_text(report)
    pdf, pages = pdf_bytes(html) if pdf_path is not None else (None, 0)  # made before anything is written
    with io.all_or_none():
        io.write_atomic(Path(html_path), lambda tmp: tmp.write_text(html, encoding="utf-8"))
        if pdf is not None:
            io.write_atomic(Path(pdf_path), lambda tmp: tmp.write_bytes(pdf))
    return Written(Path(html_path), None if pdf_path is None else Path(pdf_path), pages)
