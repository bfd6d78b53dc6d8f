"""Post-event reports: CSV of metrics and alerts, and a printable HTML page with its charts.

The HTML page is self-contained (charts are inline SVG drawn with matplotlib, no scripts, no
network), so it can be mailed, archived or printed as it is.

Example:
    >>> import pandas as pd
    >>> page = render_report_html(ReviewReport(
    ...     title="Gate", camera="gate", start=0.0, end=60.0,
    ...     samples=pd.DataFrame(), alerts=pd.DataFrame()))
    >>> "<h1>Gate</h1>" in page
    True
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")  # no display here; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from crowdwatch.console.charts import (  # noqa: E402
    METRIC_TITLES,
    chart_values,
    level_hex,
    metric_columns,
    to_datetime,
)

#: The charts of the printed report: the four an operator reads (the CSV has every measure).
REPORT_CHARTS = ("count", "density", "occupancy", "flow_rate")

_ALERT_REPORT_COLUMNS = [
    "start",
    "end",
    "camera",
    "zone",
    "rule",
    "metric",
    "level",
    "peak",
    "acknowledged_by",
    "acknowledged_note",
]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
h1 { margin-bottom: 0; } .meta { color: #666; margin-top: 0.2em; }
table { border-collapse: collapse; width: 100%; font-size: 0.85em; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; }
th { background: #f2f2f2; } .level { font-weight: bold; padding: 0 4px; border-radius: 3px; }
figure { margin: 0 0 1em; page-break-inside: avoid; } svg { max-width: 100%; height: auto; }
@media print { body { margin: 1cm; } h2 { page-break-after: avoid; } }
"""


@dataclass(frozen=True)
class ReviewReport:
    """What one review covers: a camera, a time range (epoch seconds), samples and alerts.

    ``samples`` is a :func:`~crowdwatch.console.charts.samples_table`, ``alerts`` an
    :func:`~crowdwatch.console.charts.alerts_table`; ``whatif`` optionally holds the alerts that
    other thresholds would have raised, with ``whatif_note`` describing those thresholds.
    """

    title: str
    camera: str
    start: float
    end: float
    samples: pd.DataFrame
    alerts: pd.DataFrame
    whatif: pd.DataFrame | None = None
    whatif_note: str = ""
    generated_by: str = ""
    notes: list[str] = field(default_factory=list)


def samples_csv(samples: pd.DataFrame) -> str:
    """The samples as CSV, ISO-8601 UTC times, one row per target per moment."""
    if samples.empty:
        return "time,camera,zone,kind,level\n"
    table = samples.copy()
    table["time"] = table["time"].map(lambda t: t.isoformat())
    columns = ["time", "camera", "zone", "kind", "level", *metric_columns(samples)]
    return table[columns].to_csv(index=False, float_format="%.4g")


def alerts_csv(alerts: pd.DataFrame) -> str:
    """The alerts as CSV, ISO-8601 UTC times."""
    table = alerts.reindex(columns=["id", *_ALERT_REPORT_COLUMNS]).copy()
    for column in ("start", "end"):
        table[column] = table[column].map(lambda t: t.isoformat() if pd.notna(t) else "")
    return table.to_csv(index=False, float_format="%.4g")


def render_report_html(report: ReviewReport) -> str:
    """A printable, self-contained HTML page: summary, one chart per metric, alert tables."""
    start, end = to_datetime(report.start), to_datetime(report.end)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_e(report.title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(report.title)}</h1>",
        f"<p class='meta'>Camera <b>{_e(report.camera)}</b>, {_time(start)} to {_time(end)} UTC"
        f"{(' · prepared by ' + _e(report.generated_by)) if report.generated_by else ''}</p>",
        _summary(report),
        *[f"<p>{_e(note)}</p>" for note in report.notes],
    ]
    for metric in metric_columns(report.samples) if not report.samples.empty else []:
        if metric not in REPORT_CHARTS:
            continue
        parts.append(f"<h2>{_e(METRIC_TITLES.get(metric, metric).capitalize())}</h2>")
        parts.append(f"<figure>{_metric_svg(report, metric)}</figure>")
    parts.append("<h2>Alerts</h2>")
    parts.append(_alerts_html(report.alerts))
    if report.whatif is not None:
        parts.append("<h2>With other thresholds</h2>")
        if report.whatif_note:
            parts.append(f"<p>{_e(report.whatif_note)}</p>")
        parts.append(_alerts_html(report.whatif))
    parts.append("</body></html>")
    return "\n".join(parts)


def _summary(report: ReviewReport) -> str:
    rows = []
    samples = report.samples
    if not samples.empty and "count" in samples:
        if "kind" in samples:  # counting lines have no count of people standing in them
            samples = samples[samples["kind"] == "zone"]
        for zone, group in samples.groupby("zone"):
            counts = group["count"].dropna()
            if counts.empty:
                continue
            density = group["density"].max() if "density" in group else None
            alerts = int((report.alerts["zone"] == zone).sum()) if not report.alerts.empty else 0
            rows.append(
                f"<tr><td>{_e(zone)}</td><td>{counts.mean():.1f}</td>"
                f"<td>{counts.max():.1f}</td><td>{_number(density) or '–'}</td>"
                f"<td>{alerts}</td></tr>"
            )
    if not rows:
        return "<p>No metrics were recorded in this range.</p>"
    head = (
        "<tr><th>zone</th><th>mean people</th><th>peak people</th>"
        "<th>peak people/m²</th><th>alerts</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def _metric_svg(report: ReviewReport, metric: str) -> str:
    kind = "line" if metric == "flow_rate" else "zone"
    trend = chart_values(report.samples, metric, kind, max_points=800)
    figure, axes = plt.subplots(figsize=(9, 2.6), dpi=96)
    try:
        for zone, group in trend.groupby("zone"):
            axes.step(group["time"], group["value"], where="post", label=str(zone), linewidth=1.2)
        _shade_alerts(axes, report.alerts, metric)
        axes.set_ylabel(METRIC_TITLES.get(metric, metric))
        axes.grid(alpha=0.3)
        if not trend.empty:
            axes.legend(loc="upper left", fontsize="small", frameon=False)
        axes.set_xlabel("time (UTC)")
        figure.autofmt_xdate()
        figure.tight_layout()
        buffer = io.StringIO()
        # "tight" keeps rotated time labels and the legend inside the picture (not clipped).
        figure.savefig(buffer, format="svg", bbox_inches="tight", pad_inches=0.15)
    finally:
        plt.close(figure)
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]


def _shade_alerts(axes, alerts: pd.DataFrame, metric: str) -> None:
    if alerts.empty:
        return
    for row in alerts.loc[alerts["metric"] == metric].itertuples():
        axes.axvspan(row.start, row.end, color=level_hex(row.level), alpha=0.2, linewidth=0)


def _alerts_html(alerts: pd.DataFrame) -> str:
    if alerts is None or alerts.empty:
        return "<p>None.</p>"
    head = "".join(f"<th>{_e(column.replace('_', ' '))}</th>" for column in _ALERT_REPORT_COLUMNS)
    rows = []
    for row in alerts.sort_values("start").itertuples():
        cells = []
        for column in _ALERT_REPORT_COLUMNS:
            value = getattr(row, column, None)
            if column == "level":
                style = f"color:{level_hex(str(value))}"
                cells.append(f"<td><span class='level' style='{style}'>{_e(value)}</span></td>")
            elif column in ("start", "end"):
                cells.append(f"<td>{_time(value)}</td>")
            elif column == "peak":
                cells.append(f"<td>{_number(value)}</td>")
            else:
                cells.append(f"<td>{_e(_text(value))}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _time(value) -> str:
    return "" if value is None or pd.isna(value) else value.strftime("%Y-%m-%d %H:%M:%S")


def _text(value) -> str:
    """A cell's text: empty for missing values (None, NaN, NaT), never "nan"."""
    try:
        missing = value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        missing = False
    return "" if missing else str(value)


def _number(value) -> str:
    return "" if value is None or pd.isna(value) else f"{float(value):.2f}"


def _e(value) -> str:
    return html.escape(str(value))
