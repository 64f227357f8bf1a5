"""Writers of one ISF table: Markdown, LaTeX (booktabs), HTML fragment and xlsx.

Each takes the string table of :func:`finsam_eval.report.tables.isf_table` (its ``attrs`` give
the caption and the notes) and returns text ending in a newline (xlsx: writes a file). Text
output is byte-identical for the same input; see :mod:`finsam_eval.report.tables` for the
formatting rules.
"""

from __future__ import annotations

import datetime
import html
import io
import os
import re
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from finsam_eval.report.estimates import DEFAULT_STARS, _star_note
from finsam_eval.report.labels import (
    adjustment_label,
    check_language,
    default_caption,
    method_slug,
    row_label,
    text,
)

__all__ = ["latex_escape", "to_html", "to_latex", "to_markdown", "to_xlsx", "xlsx_available"]


def _rows(table: pd.DataFrame) -> list[tuple[str, str, list[str]]]:
    """(outcome, statistic, cells) per table row."""
    out = []
    for (outcome, statistic), cells in zip(table.index, table.to_numpy(), strict=True):
        out.append((str(outcome), str(statistic), ["" if c is None else str(c) for c in cells]))
    return out


def _notes_parts(
    table: pd.DataFrame, language: str = "en"
) -> tuple[str, list[tuple[str, str]], str]:
    """(lead text, star legend, p-value source and N) for the table notes."""
    check_language(language)
    stars = table.attrs.get("stars", DEFAULT_STARS)
    p_col = table.attrs.get("p_col", "p_value")
    if p_col == "p_value":
        source = text("stars_pointwise", language)
    else:
        source = f"p: {p_col}"
    if table.attrs.get("dagger"):
        adjustment = adjustment_label(str(table.attrs.get("adjustment", "romano_wolf")))
        source += "; " + text("dagger", language, adjustment=adjustment)
    n_units, n_clusters = table.attrs.get("n_units"), table.attrs.get("n_clusters")
    n_cohorts = table.attrs.get("n_cohorts")
    if n_units is not None:
        source += ". " + text(
            "n_line",
            language,
            units=n_units,
            clusters="–" if n_clusters is None else n_clusters,
            cohorts="–" if n_cohorts is None else n_cohorts,
        ).rstrip(".")
    return text("table_lead", language), _star_note(stars), source


def to_markdown(
    table: pd.DataFrame,
    *,
    labels: Mapping[str, str] | None = None,
    caption: str | None = None,
    notes: bool = True,
    language: str = "en",
) -> str:
    """Render an ISF table as a GitHub-flavoured Markdown pipe table.

    The SE row has an empty first cell. Stars in cells are left as is (a lone ``**`` in a cell
    cannot open emphasis); stars in the notes are escaped.

    Parameters
    ----------
    table
        Output of :func:`isf_table`.
    labels
        Outcome labels, default :data:`OUTCOME_LABELS`.
    caption
        Bold line above the table; None uses :func:`default_caption`, "" none.
    notes
        Append the notes paragraph (units, star legend, which p-values, N).
    language
        "sv" or "en": headers, notes and default labels.

    Returns
    -------
    str
        Markdown ending in a newline.
    """

    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace("|", "\\|")

    lines = []
    caption = default_caption(table, language) if caption is None else caption
    if caption:
        lines += [f"**{esc(caption)}**", ""]
    header = [text("outcome", language)] + [str(c) for c in table.columns]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|:---|" + "---:|" * len(table.columns))
    for outcome, statistic, cells in _rows(table):
        first = esc(row_label(outcome, labels, language)) if statistic == "estimate" else ""
        lines.append("| " + " | ".join([first, *(esc(c) for c in cells)]) + " |")
    if notes:
        lead, legend, source = _notes_parts(table, language)
        stars = ", ".join(f"{s.replace('*', chr(92) + '*')} p < {t}" for s, t in legend)
        lines += ["", f"{lead} {stars} ({source})."]
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",  # OT1 font encoding prints "<" as an inverted "!"
    ">": r"\textgreater{}",
    "–": "--",
    "—": "---",
    "−": "$-$",
    "†": r"\dag{}",  # the adjusted-significance mark
}


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters (one pass, so replacements are never re-escaped)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _latex_cell(text: str) -> str:
    text = latex_escape(text)
    # a leading ASCII "-" is a minus sign: typeset it as one
    return "$-$" + text[1:] if text.startswith("-") else text


def to_latex(
    table: pd.DataFrame,
    *,
    labels: Mapping[str, str] | None = None,
    caption: str | None = None,
    label: str | None = None,
    notes: bool = True,
    float_env: bool = True,
    language: str = "en",
) -> str:
    """Render an ISF table as a booktabs LaTeX table (needs ``\\usepackage{booktabs}``).

    Parameters
    ----------
    table
        Output of :func:`isf_table`.
    labels
        Outcome labels, default :data:`OUTCOME_LABELS` (escaped; non-ASCII letters need UTF-8
        input, the LaTeX default since 2018).
    caption, label
        ``\\caption`` and ``\\label``; None derives them from the table's attrs
        (label ``tab:isf-<population>-<method>``), "" omits them.
    notes
        Notes paragraph below the tabular (only inside the float environment).
    float_env
        Wrap in a ``table`` environment; False returns the bare ``tabular``.
    language
        "sv" or "en": headers, notes and default labels.

    Returns
    -------
    str
        LaTeX source ending in a newline.
    """
    n = len(table.columns)
    # the displayed grid (label column, SE rows with an empty label), cells escaped here so
    # that a leading "-" becomes a typographic minus; pandas' Styler writes the booktabs tabular
    grid = _grid(table, labels, language).map(_latex_cell)
    grid.columns = pd.MultiIndex.from_tuples(
        [("", latex_escape(text("outcome", language)))]
        + [(latex_escape(text("years_since_joining", language)), str(c)) for c in table.columns]
    )
    tabular = grid.style.hide(axis="index").to_latex(
        hrules=True, column_format="l" + "r" * n, multicol_align="c"
    )
    body = tabular.rstrip("\n").split("\n")
    # booktabs: a rule under the spanning header (Styler has no option for \cmidrule)
    body.insert(3, f"\\cmidrule(l){{2-{n + 1}}}")
    if not float_env:
        return "\n".join(body) + "\n"

    caption = default_caption(table, language) if caption is None else caption
    if label is None:
        population, method = table.attrs.get("population"), table.attrs.get("method")
        label = f"tab:isf-{population}-{method_slug(method)}" if population and method else ""
    lines = [r"\begin{table}[htbp]", r"\centering"]
    if caption:
        lines.append(f"\\caption{{{latex_escape(caption)}}}")
    if label:
        lines.append(f"\\label{{{latex_escape(label)}}}")
    lines += body
    if notes:
        lead, legend, source = _notes_parts(table, language)
        stars = ", ".join(f"{s} $p<{t}$" for s, t in legend)
        lines += [
            r"\par\smallskip",
            f"{{\\footnotesize {latex_escape(lead)} {stars} ({latex_escape(source)}).}}",
        ]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def to_html(
    table: pd.DataFrame,
    *,
    table_id: str | None = None,
    labels: Mapping[str, str] | None = None,
    caption: str | None = None,
    notes: bool = True,
    language: str = "en",
) -> str:
    """Render an ISF table as an HTML ``<table>`` fragment (escaped, no inline styles).

    Parameters
    ----------
    table
        Output of :func:`isf_table`.
    table_id
        ``id`` attribute; None gives ``table-<population>-<method>`` from the attrs.
    labels
        Outcome labels, default :data:`OUTCOME_LABELS`.
    caption
        ``<caption>`` text; None uses :func:`default_caption`, "" none.
    notes
        Notes in a ``<tfoot>`` row.
    language
        "sv" or "en": headers, notes and default labels.

    Returns
    -------
    str
        The fragment, ending in a newline. Estimate rows have class "estimate", SE rows "se".
    """
    esc = html.escape
    n = len(table.columns)
    if table_id is None:
        population, method = table.attrs.get("population"), table.attrs.get("method")
        table_id = f"table-{population}-{method_slug(method)}" if population and method else None
    id_attr = f' id="{esc(table_id)}"' if table_id else ""
    lines = [f'<table{id_attr} class="isf-table">']
    caption = default_caption(table, language) if caption is None else caption
    if caption:
        lines.append(f"<caption>{esc(caption)}</caption>")
    lines += [
        "<thead>",
        f'<tr><th scope="col" rowspan="2">{esc(text("outcome", language))}</th>'
        f'<th scope="colgroup" colspan="{n}">{esc(text("years_since_joining", language))}</th>'
        "</tr>",
        "<tr>" + "".join(f'<th scope="col">{esc(str(c))}</th>' for c in table.columns) + "</tr>",
        "</thead>",
        "<tbody>",
    ]
    for outcome, statistic, cells in _rows(table):
        tds = "".join(f"<td>{esc(c)}</td>" for c in cells)
        if statistic == "estimate":
            head = f'<th scope="row" rowspan="2">{esc(row_label(outcome, labels, language))}</th>'
            lines.append(f'<tr class="estimate" data-outcome="{esc(outcome)}">{head}{tds}</tr>')
        else:
            lines.append(f'<tr class="se" data-outcome="{esc(outcome)}">{tds}</tr>')
    lines.append("</tbody>")
    if notes:
        lead, legend, source = _notes_parts(table, language)
        stars = ", ".join(f"{s} p &lt; {t}" for s, t in legend)
        lines.append(
            f'<tfoot><tr><td colspan="{n + 1}">{esc(lead)} {stars} ({esc(source)}).</td></tr>'
            "</tfoot>"
        )
    lines.append("</table>")
    return "\n".join(lines) + "\n"


def xlsx_available() -> bool:
    """Whether openpyxl (needed by :func:`to_xlsx`) is installed."""
    try:
        import openpyxl  # noqa: F401
    except ImportError:
        return False
    return True


def _grid(
    table: pd.DataFrame, labels: Mapping[str, str] | None, language: str = "en"
) -> pd.DataFrame:
    """The table as displayed: label column, estimate row, SE row with an empty label."""
    records = [
        [row_label(outcome, labels, language) if statistic == "estimate" else "", *cells]
        for outcome, statistic, cells in _rows(table)
    ]
    header = text("outcome", language)
    return pd.DataFrame(records, columns=[header, *(str(c) for c in table.columns)])


def to_xlsx(
    table: pd.DataFrame,
    path: str | Path,
    *,
    labels: Mapping[str, str] | None = None,
    sheet_name: str | None = None,
    language: str = "en",
) -> Path:
    """Write an ISF table to an Excel workbook as displayed (strings, SE rows below).

    The numbers for further computation are in the CSV long table; this is the formatted table.
    Like the text writers, the file is byte-identical across runs: openpyxl stamps the workbook
    and its zip entries with the time of saving, and :func:`_reproducible_zip` replaces both
    with ``SOURCE_DATE_EPOCH`` (the reproducible-builds convention) or, unset, 1980-01-01.

    Raises
    ------
    ImportError
        When openpyxl is not installed (see :func:`xlsx_available`).
    """
    if not xlsx_available():
        raise ImportError("to_xlsx needs openpyxl: pip install openpyxl")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if sheet_name is None:
        population, method = table.attrs.get("population"), table.attrs.get("method")
        sheet_name = f"{population}-{method_slug(method)}" if population and method else "Sheet1"
    # Excel limits sheet names to 31 characters
    buffer = io.BytesIO()
    _grid(table, labels, language).to_excel(
        buffer, sheet_name=sheet_name[:31], index=False, engine="openpyxl"
    )
    path.write_bytes(_reproducible_zip(buffer.getvalue()))
    return path


#: 1980-01-01 00:00 UTC, the first time a zip entry can carry
_ZIP_EPOCH = 315532800


def _source_date_epoch() -> int:
    """``SOURCE_DATE_EPOCH`` (seconds since 1970, UTC) or, unset, the zip format's first day."""
    value = os.environ.get("SOURCE_DATE_EPOCH")
    if value is None:
        return _ZIP_EPOCH
    try:
        epoch = int(value)
    except ValueError:
        raise ValueError(
            f"SOURCE_DATE_EPOCH must be whole seconds since 1970-01-01 UTC, got {value!r}"
        ) from None
    if epoch < _ZIP_EPOCH:
        raise ValueError(
            f"SOURCE_DATE_EPOCH={value} is before 1980-01-01 ({_ZIP_EPOCH}), the earliest time a "
            "zip (xlsx) entry can carry"
        )
    return epoch


# openpyxl's document-property timestamps (docProps/core.xml)
_XLSX_TIMES = re.compile(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:)")


def _reproducible_zip(data: bytes) -> bytes:
    """``data`` (an xlsx file) with fixed timestamps, entries in the same order."""
    import zipfile

    stamp = datetime.datetime.fromtimestamp(_source_date_epoch(), tz=datetime.UTC)
    iso = stamp.strftime("%Y-%m-%dT%H:%M:%SZ").encode("ascii")
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for entry in source.infolist():
            content = source.read(entry)
            if entry.filename == "docProps/core.xml":
                content = _XLSX_TIMES.sub(rb"\g<1>" + iso + rb"\g<2>", content)
            info = zipfile.ZipInfo(entry.filename, date_time=stamp.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = entry.external_attr
            target.writestr(info, content)
    return out.getvalue()
