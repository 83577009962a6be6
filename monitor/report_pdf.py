"""The monthly report as a PDF an assessor signs: the printable bilingual HTML page (:mod:`monitor.report`) laid
out by WeasyPrint (Pango for text; the Chinese needs a CJK font: Debian's ``fonts-noto-cjk``).

The PDF carries exactly what the HTML page carries (the figures, the itemised 11:00 breaches, the policy hash,
the version and the signature blocks), plus page numbers and the month, policy hash and version in every
page's footer, so that a loose page still says which report it belongs to. Its metadata (title, creation
date = the report's ``generated_at``) comes from the body, so the same body renders to the same document.

WeasyPrint is imported on first use: a machine without it (or without Pango) can still serve every other
format; :class:`PdfUnavailable` then says what to install.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping
from typing import Any

from monitor.errors import SlawatchError
from monitor.report import html_from_json

__all__ = ["PdfUnavailable", "pdf_css", "pdf_from_json"]


class PdfUnavailable(SlawatchError):
    """WeasyPrint (or the Pango it needs) is not installed: no PDF can be rendered here."""


def _css_string(text: str) -> str:
    """A CSS string literal (double-quoted, escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def pdf_css(data: Mapping[str, Any]) -> str:
    """Print-only additions: a footer on every page naming the report, and page numbers."""
    version = data.get("version")
    shown = "not issued (a computation)" if version is None else f"version {version}"
    footer = f"{data['month']} · {shown} · policy sha256 {str(data['policy']['hash'])[:16]}…"
    return (
        "@page { @bottom-left { content: "
        + _css_string(footer)
        + '; font-family: "Noto Sans CJK SC", sans-serif; font-size: 7pt; color: #555; }'
        ' @bottom-right { content: counter(page) " / " counter(pages); font-family: "Noto Sans CJK SC", '
        "sans-serif; font-size: 7pt; color: #555; } }"
    )


def pdf_from_json(data: Mapping[str, Any], *, claim_hour: int = 11) -> bytes:
    """The PDF of a :func:`monitor.report.report_json` dict (an issued version's stored body, or a computation)."""
    for name in ("weasyprint", "weasyprint.progress", "fontTools"):  # its progress and CSS notes are not ours
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from weasyprint import CSS, HTML  # type: ignore[import-untyped]
    except (ImportError, OSError) as exc:  # OSError: WeasyPrint installed but Pango missing
        raise PdfUnavailable(
            "the PDF needs WeasyPrint and Pango (pip install weasyprint; apt-get install libpango-1.0-0 "
            f"libpangoft2-1.0-0 fonts-noto-cjk): {exc}"
        ) from None
    page = html_from_json(data, claim_hour=claim_hour)
    contract = data.get("contract") or {}
    title = f"Monthly O&M assessment {data['month']} — {contract.get('name') or contract.get('id') or ''}"
    document = HTML(string=page, base_url=None).render(stylesheets=[CSS(string=pdf_css(data))])
    document.metadata.title = html.unescape(title)
    document.metadata.created = data.get("generated_at")
    document.metadata.modified = data.get("generated_at")
    document.metadata.generator = "slawatch"
    out: bytes = document.write_pdf()
    return out
