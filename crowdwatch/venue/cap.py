"""Alerts as OASIS Common Alerting Protocol 1.2 documents, for public warning systems.

One ``<alert>`` per alert event: ``opened`` is msgType Alert, ``acknowledged`` an Update and
``closed`` a Cancel, the last two referencing the opening message. Levels map to CAP severity
and urgency (advisory: Moderate / Expected, warning: Severe / Immediate, critical: Extreme /
Immediate); certainty is Observed (the figures are measured). With a polygon in venue metres
and the venue's :class:`~crowdwatch.venue.settings.GeoAnchor`, the area carries the polygon in
WGS84 ("lat,lon" pairs, first = last) as CAP requires.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from crowdwatch.alerts.records import AlertEvent
from crowdwatch.venue.settings import GeoAnchor, Point

CAP_NAMESPACE = "urn:oasis:names:tc:emergency:cap:1.2"

_SEVERITY = {"advisory": "Moderate", "warning": "Severe", "critical": "Extreme"}
_URGENCY = {"advisory": "Expected", "warning": "Immediate", "critical": "Immediate"}
_MSG_TYPE = {"opened": "Alert", "acknowledged": "Update", "closed": "Cancel"}
_METRIC_EVENT = {
    "count": "crowd count",
    "density": "crowd density",
    "occupancy": "crowd occupancy",
    "flow_rate": "crowd flow",
    "pressure": "crowd pressure",
    "rise_rate": "crowd build-up",
    "minutes_to_limit": "crowd build-up forecast",
}


def cap_time(moment: datetime) -> str:
    """CAP's dateTime: ``2026-10-14T19:05:00+00:00`` (an explicit offset, never ``Z``)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.replace(microsecond=0).isoformat()


def cap_identifier(sender: str, alert_id: str, kind: str) -> str:
    """A message identifier with none of CAP's forbidden characters (space, comma, <, &)."""
    raw = f"{sender}-{alert_id}-{kind}"
    return "".join(ch if ch.isalnum() or ch in "-_.:@" else "_" for ch in raw)


def alert_to_cap(
    event: AlertEvent,
    *,
    sender: str,
    stream_start: datetime | None = None,
    polygon_m: Sequence[Point] | None = None,
    anchor: GeoAnchor | None = None,
    area_desc: str | None = None,
    status: str = "Actual",
    scope: str = "Public",
    sender_name: str | None = None,
    language: str = "en-GB",
    expires_s: float | None = None,
) -> str:
    """A CAP 1.2 XML document (UTF-8 text) for one alert event.

    ``stream_start`` is the wall-clock time of stream second 0: ``sent`` is then the event's
    moment (else now); ``polygon_m`` with ``anchor`` adds the area's WGS84 polygon.
    """
    record = event.record
    if stream_start is not None:
        moment = stream_start + timedelta(seconds=float(event.time_s))
        onset = stream_start + timedelta(seconds=float(record.start_s))
    else:
        moment = onset = datetime.now(UTC)
    ET.register_namespace("", CAP_NAMESPACE)

    def sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
        element = ET.SubElement(parent, f"{{{CAP_NAMESPACE}}}{tag}")
        if text is not None:
            element.text = text
        return element

    root = ET.Element(f"{{{CAP_NAMESPACE}}}alert")
    sub(root, "identifier", cap_identifier(sender, record.id, event.kind))
    sub(root, "sender", sender)
    sub(root, "sent", cap_time(moment))
    sub(root, "status", status)
    msg_type = _MSG_TYPE.get(event.kind, "Update")
    sub(root, "msgType", msg_type)
    sub(root, "scope", scope)
    if msg_type != "Alert":
        opened_at = (
            stream_start + timedelta(seconds=float(record.opened_s)) if stream_start else moment
        )
        original = cap_identifier(sender, record.id, "opened")
        sub(root, "references", f"{sender},{original},{cap_time(opened_at)}")

    info = sub(root, "info")
    sub(info, "language", language)
    sub(info, "category", "Safety")
    place = area_desc or record.zone or record.target
    event_name = _METRIC_EVENT.get(record.metric, record.metric)
    sub(info, "event", f"{event_name} {record.level}")
    sub(
        info, "urgency", "Past" if event.kind == "closed" else _URGENCY.get(record.level, "Unknown")
    )
    sub(info, "severity", _SEVERITY.get(record.level, "Unknown"))
    sub(info, "certainty", "Observed")
    sub(info, "onset", cap_time(onset))
    if expires_s is not None:
        sub(info, "expires", cap_time(moment + timedelta(seconds=expires_s)))
    if sender_name:
        sub(info, "senderName", sender_name)
    sub(info, "headline", f"{place}: {event_name} {record.level}")
    sub(
        info,
        "description",
        f"{record.rule} reached {record.value:.2f} (threshold {record.threshold:g}, peak "
        f"{record.peak:.2f}) at {record.target}; {event.kind}.",
    )
    for name, value in (("target", record.target), ("metric", record.metric),
                        ("alert_id", record.id)):  # fmt: skip
        parameter = sub(info, "parameter")
        sub(parameter, "valueName", name)
        sub(parameter, "value", str(value))
    area = sub(info, "area")
    sub(area, "areaDesc", place)
    if polygon_m is not None and anchor is not None and len(polygon_m) >= 3:
        sub(area, "polygon", cap_polygon(polygon_m, anchor))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=False)


def cap_polygon(polygon_m: Sequence[Point], anchor: GeoAnchor) -> str:
    """CAP polygon text: WGS84 "lat,lon" pairs separated by spaces, closed (first = last)."""
    points = list(polygon_m)
    if tuple(points[0]) != tuple(points[-1]):
        points.append(points[0])
    return " ".join(f"{lat:.6f},{lon:.6f}" for lat, lon in anchor.to_wgs84(points))


def cap_document(xml_text: str) -> str:
    """``xml_text`` with the XML declaration CAP receivers expect."""
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + xml_text
