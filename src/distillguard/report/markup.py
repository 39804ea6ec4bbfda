"""Escaping and the small HTML pieces of the report: every input-derived string goes through `esc`."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from distillguard.reasons import REASONS

SAMPLE_CHARS = 300  # characters kept of each sample prompt

# One line per reason code, for an analyst checking a verdict.
REASON_DESCRIPTIONS: dict[str, str] = {r.code: r.description for r in REASONS}


def esc(value: object) -> str:
    """Text for HTML element content or a quoted attribute; None is empty."""
    return "" if value is None else html.escape(str(value), quote=True)


def plot_label(value: object) -> str:
    """Text for a plotly label: plotly.js reads tags and entities in labels, so escape them."""
    return html.escape("" if value is None else str(value), quote=False)


def truncate(text: str, limit: int = SAMPLE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def num(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return esc(value)


def count_cell(value: int | None) -> str:
    return f'<td class="num" data-sort="{int(value or 0)}">{num(value)}</td>'


def risk_cell(risk: float | None, threshold: float) -> str:
    cls = "risk high" if risk is not None and risk > threshold else "risk"
    shown = "—" if risk is None else f"{risk:.3f}"
    return f'<td class="num {cls}" data-sort="{risk or 0:.6f}">{shown}</td>'


def reason_chips(reasons: str | None) -> str:
    """Reason codes as chips; a known code links to its explanation, anything else is plain text."""
    chips = []
    for code in (reasons or "").split(";"):
        code = code.strip()
        if not code:
            continue
        if code in REASON_DESCRIPTIONS:
            chips.append(
                f'<a class="chip" href="#reason-{code}" title="{esc(REASON_DESCRIPTIONS[code])}">{code}</a>'
            )
        else:
            chips.append(f'<span class="chip">{esc(code)}</span>')
    return "".join(chips)


def table_html(header: Sequence[str], rows: Iterable[str], *, sortable: bool = False) -> str:
    """A table from escaped header names and pre-rendered `<tr>` rows."""
    cls = ' class="sortable"' if sortable else ""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def kv_table(pairs: Iterable[tuple[str, str]]) -> str:
    """Two-column table of escaped labels and pre-rendered values."""
    return "<table>" + "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in pairs) + "</table>"


def more_note(shown: int, total: int, what: str) -> str:
    if total <= shown:
        return ""
    return f'<p class="muted">Showing {shown:,} of {total:,} {what}; the CSV outputs list them all.</p>'
