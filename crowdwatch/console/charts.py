"""Chart data for the console: metric samples and alerts as tables, trends, timelines.

Pure shaping (pandas in, pandas out) plus small Altair chart builders, so the pages stay thin and
the same charts serve the live console and the review report.

Example:
    >>> from crowdwatch.store.records import MetricSample
    >>> table = samples_table([MetricSample("gate", "north", 0.0, {"count": 3.0}),
    ...                        MetricSample("gate", "north", 1.0, {"count": 5.0})])
    >>> trend_table(table, "count")["value"].tolist()
    [3.0, 5.0]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import altair as alt
import pandas as pd

from crowdwatch.alerts import AlertRecord
from crowdwatch.annotate.draw import LEVEL_COLOURS
from crowdwatch.store.records import MetricSample, StoredAlert

LEVELS: tuple[str, ...] = ("normal", "advisory", "warning", "critical")
LEVEL_RANK: dict[str, int] = {level: rank for rank, level in enumerate(LEVELS)}

METRIC_TITLES: dict[str, str] = {
    "count": "people",
    "density": "people per m²",
    "occupancy": "share of capacity (%)",
    "flow_rate": "flow (people per metre per minute)",
    "flow_in": "flow in (people per metre per minute)",
    "flow_out": "flow out (people per metre per minute)",
    "pressure": "crowd pressure (1/s²)",
    "mean_speed": "mean walking speed (m/s)",
    "rise_rate": "filling rate (people/m² per minute)",
    "minutes_to_limit": "forecast minutes to the limit density (up to 60)",
    "crossed_in": "people crossed in (total)",
    "crossed_out": "people crossed out (total)",
    "stalled": "stalled (density rising, flow falling: 1 = yes)",
}

#: Forecasts further away than this are left off the charts (nothing to act on yet).
MINUTES_SHOWN = 60.0

_BASE_COLUMNS = ("time", "camera", "zone", "target", "kind", "level")
_ALERT_COLUMNS = (
    "id",
    "camera",
    "zone",
    "target",
    "rule",
    "metric",
    "level",
    "value",
    "peak",
    "start",
    "end",
    "open",
    "acknowledged_by",
    "acknowledged_at",
    "acknowledged_note",
    "snapshot",
)


# Times are UTC everywhere in the console, whatever the browser's time zone.
_UTC_AXIS = alt.Axis(labelExpr="utcFormat(datum.value, '%H:%M:%S')", title="time (UTC)")
_UTC_SCALE = alt.Scale(type="utc")


def level_hex(level: str) -> str:
    """The ``#rrggbb`` colour of an alert level, the same as on annotated frames.

    Example:
        >>> level_hex("critical")
        '#e60000'
    """
    blue, green, red = LEVEL_COLOURS.get(level, LEVEL_COLOURS["normal"])
    return f"#{red:02x}{green:02x}{blue:02x}"


def worst_level(levels: Iterable[str]) -> str:
    """The most severe of some alert levels (``normal`` when there are none).

    Example:
        >>> worst_level(["advisory", "critical", "normal"])
        'critical'
    """
    return max(levels, key=lambda level: LEVEL_RANK.get(level, 0), default="normal")


def to_datetime(seconds: float | pd.Series | None) -> pd.Timestamp | pd.Series | None:
    """Epoch seconds (the store's times) as UTC timestamps for chart axes."""
    if seconds is None:
        return None
    return pd.to_datetime(seconds, unit="s", utc=True)


def samples_table(samples: Iterable[MetricSample]) -> pd.DataFrame:
    """One row per sample: ``time`` (UTC), camera, zone, target, kind, level, one column per metric.

    Metric columns hold floats with NaN where a sample did not know the value.
    """
    rows = [
        {
            "time": sample.time,
            "camera": sample.camera,
            "zone": sample.zone,
            "target": sample.target,
            "kind": sample.kind,
            "level": sample.level,
            **{name: _as_float(value) for name, value in sample.values.items()},
        }
        for sample in samples
    ]
    if not rows:
        return pd.DataFrame(columns=list(_BASE_COLUMNS))
    table = pd.DataFrame(rows)
    table["time"] = to_datetime(table["time"])
    return table.sort_values("time", kind="stable").reset_index(drop=True)


def metric_columns(table: pd.DataFrame) -> list[str]:
    """The metric columns of a samples table that hold at least one value, known ones first."""
    present = [
        column
        for column in table.columns
        if column not in _BASE_COLUMNS and table[column].notna().any()
    ]
    known = [name for name in METRIC_TITLES if name in present]
    return known + sorted(name for name in present if name not in METRIC_TITLES)


def trend_table(table: pd.DataFrame, metric: str, max_points: int = 600) -> pd.DataFrame:
    """Long table ``time, zone, value`` of one metric, averaged into at most ``max_points``
    time buckets per zone so that hours of samples chart quickly.

    Raises ``KeyError`` naming the metrics the table has when ``metric`` is not one of them.
    """
    if max_points < 1:
        raise ValueError(f"max_points must be at least 1, got {max_points}")
    if table.empty:
        return pd.DataFrame(columns=["time", "zone", "value"])
    if metric not in table.columns:
        raise KeyError(f"no metric {metric!r} in the samples; they have: {metric_columns(table)}")
    values = table.loc[table[metric].notna(), ["time", "zone", metric]]
    values = values.rename(columns={metric: "value"})
    per_zone = values.groupby("zone")["time"].count().max() if not values.empty else 0
    if per_zone > max_points:
        values = _bucket_means(values, max_points)
    return values.reset_index(drop=True)


def _bucket_means(values: pd.DataFrame, max_points: int) -> pd.DataFrame:
    start, end = values["time"].min(), values["time"].max()
    width = max((end - start) / max_points, pd.Timedelta(milliseconds=1))
    bucket = ((values["time"] - start) // width).astype(int).clip(upper=max_points - 1)
    grouped = values.assign(bucket=bucket).groupby(["zone", "bucket"], as_index=False)
    means = grouped.agg(time=("time", "min"), value=("value", "mean"))
    return means[["time", "zone", "value"]].sort_values(["time", "zone"])


def chart_values(
    table: pd.DataFrame, metric: str, kind: str | None, max_points: int = 600
) -> pd.DataFrame:
    """One metric's trend for the charts, in the units the titles name: occupancy in %,
    forecasts cut at an hour (beyond that a forecast says nothing to act on)."""
    rows = table if kind is None or "kind" not in table else table[table["kind"] == kind]
    if metric not in rows or rows[metric].isna().all():
        return pd.DataFrame(columns=["time", "zone", "value"])
    trend = trend_table(rows, metric, max_points=max_points)
    if metric == "occupancy":
        trend = trend.assign(value=trend["value"] * 100.0)
    elif metric == "minutes_to_limit":
        trend = trend[trend["value"] <= MINUTES_SHOWN]
    return trend


def latest_per_target(table: pd.DataFrame) -> pd.DataFrame:
    """The last sample of each target (the live wall's numbers)."""
    if table.empty:
        return table
    return table.groupby("target", as_index=False, sort=True).tail(1).reset_index(drop=True)


def alerts_table(alerts: Iterable[StoredAlert], now: float | None = None) -> pd.DataFrame:
    """One row per alert with UTC ``start``/``end`` (open alerts end at ``now``) and ``open``."""
    rows = []
    for alert in alerts:
        end = alert.end if alert.end is not None else (now if now is not None else alert.updated)
        rows.append(
            {
                "id": alert.id,
                "camera": alert.camera,
                "zone": alert.zone,
                "target": f"{alert.camera}/{alert.zone}",
                "rule": alert.rule,
                "metric": alert.metric,
                "level": alert.level,
                "value": alert.value,
                "peak": alert.peak,
                "start": alert.start,
                "end": end,
                "open": alert.is_open,
                "acknowledged_by": alert.acknowledged_by,
                "acknowledged_at": alert.acknowledged_at,
                "acknowledged_note": alert.acknowledged_note,
                "snapshot": alert.snapshot,
            }
        )
    table = pd.DataFrame(rows, columns=list(_ALERT_COLUMNS))
    for column in ("start", "end", "acknowledged_at"):
        table[column] = to_datetime(pd.to_numeric(table[column]))
    return table


def replayed_table(records: Iterable[AlertRecord]) -> pd.DataFrame:
    """Alerts from :func:`crowdwatch.alerts.replay` (times in epoch seconds) as an alerts table."""
    rows = [
        {
            "id": record.id,
            "camera": record.camera,
            "zone": record.zone,
            "target": record.target,
            "rule": record.rule,
            "metric": record.metric,
            "level": record.level,
            "value": record.value,
            "peak": record.peak,
            "start": record.start_s,
            "end": record.end_s if record.end_s is not None else record.start_s,
            "open": False,
        }
        for record in records
    ]
    table = pd.DataFrame(rows, columns=list(_ALERT_COLUMNS))
    for column in ("start", "end", "acknowledged_at"):
        table[column] = to_datetime(pd.to_numeric(table[column]))
    return table


def order_for_attention(alerts: pd.DataFrame) -> pd.DataFrame:
    """Open alerts first, unacknowledged before acknowledged, severe before mild, newest first."""
    if alerts.empty:
        return alerts
    keys = alerts.assign(
        _open=~alerts["open"],
        _acked=alerts["acknowledged_by"].notna(),
        _rank=-alerts["level"].map(LEVEL_RANK).fillna(0),
        _start=-alerts["start"].astype("int64"),
    )
    keys = keys.sort_values(["_open", "_acked", "_rank", "_start"], kind="stable")
    return keys.drop(columns=["_open", "_acked", "_rank", "_start"]).reset_index(drop=True)


def trend_chart(
    trend: pd.DataFrame,
    metric: str,
    alerts: pd.DataFrame | None = None,
    thresholds: Sequence[tuple[str, float]] = (),
    height: int = 220,
) -> alt.LayerChart:
    """Lines per zone over time, alert spans shaded in their level colours, threshold rules."""
    title = METRIC_TITLES.get(metric, metric)
    lines = (
        alt.Chart(trend)
        .mark_line(interpolate="step-after")
        .encode(
            x=alt.X("time:T", axis=_UTC_AXIS, scale=_UTC_SCALE),
            y=alt.Y("value:Q", title=title),
            color=alt.Color("zone:N", title="zone"),
            tooltip=["zone", _utc_tooltip("time"), alt.Tooltip("value:Q", format=".2f")],
        )
    )
    layers: list[alt.Chart] = []
    if alerts is not None and not alerts.empty:
        spans = alerts.loc[alerts["metric"] == metric]
        if not spans.empty:
            layers.append(_alert_spans(spans))
    if thresholds:
        rules = pd.DataFrame(thresholds, columns=["level", "threshold"]).drop_duplicates()
        layers.append(
            alt.Chart(rules)
            .mark_rule(strokeDash=[4, 3], size=2)
            .encode(
                y="threshold:Q",
                color=_level_scale(rules["level"]),
                tooltip=["level", "threshold"],
            )
        )
    layers.append(lines)
    return alt.layer(*layers).resolve_scale(color="independent").properties(height=height)


def timeline_chart(
    alerts: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    cursor: pd.Timestamp | None = None,
    row_px: int = 24,
) -> alt.LayerChart:
    """Alert bars, a row per zone, along ``[start, end]``, with a rule at the replay cursor."""
    scale = alt.Scale(type="utc", domain=[start, end])
    rows = max(int(alerts["zone"].nunique()) if not alerts.empty else 0, 1)
    if alerts.empty:
        base = alt.Chart(pd.DataFrame({"time": [start, end]})).mark_point(opacity=0)
        layers: list[alt.Chart] = [base.encode(x=alt.X("time:T", axis=_UTC_AXIS, scale=scale))]
    else:
        # Severe levels last, so that they are drawn over the milder ones they overlap.
        ordered = alerts.iloc[alerts["level"].map(LEVEL_RANK).fillna(0).argsort(kind="stable")]
        bars = alt.Chart(ordered).mark_bar(cornerRadius=2)
        layers = [
            bars.encode(
                x=alt.X("start:T", axis=_UTC_AXIS, scale=scale),
                x2="end:T",
                y=alt.Y("zone:N", title=None),
                color=_level_scale(alerts["level"]),
                tooltip=["zone", "rule", "level", _utc_tooltip("start")],
            )
        ]
    if cursor is not None:
        marker = alt.Chart(pd.DataFrame({"time": [cursor]})).mark_rule(color="black", size=2)
        layers.append(marker.encode(x=alt.X("time:T", scale=scale)))
    # Streamlit fits the whole chart (axis, legend) into the height: leave room for them.
    return alt.layer(*layers).properties(height=max(row_px * rows + 60, 120))


def _utc_tooltip(field: str) -> alt.Tooltip:
    return alt.Tooltip(f"{field}:T", timeUnit="utcyearmonthdatehoursminutesseconds", title=field)


def _alert_spans(spans: pd.DataFrame) -> alt.Chart:
    return (
        alt.Chart(spans)
        .mark_rect(opacity=0.18)
        .encode(
            x=alt.X("start:T", scale=_UTC_SCALE),
            x2="end:T",
            color=_level_scale(spans["level"]),
            tooltip=["zone", "rule", "level"],
        )
    )


def _level_scale(levels: pd.Series) -> alt.Color:
    present = [level for level in LEVELS if level in set(levels)]
    return alt.Color(
        "level:N",
        title="level",
        scale=alt.Scale(domain=present, range=[level_hex(level) for level in present]),
    )


def _as_float(value: float | None) -> float:
    return float("nan") if value is None else float(value)
