"""Turning a replay into a video to watch: heat map over the recorded frames, with the metrics
and open alerts of each moment written on it; and reading times given on the command line."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from crowdwatch.annotate import draw_header
from crowdwatch.heatmap.colour import overlay, smooth_for_display
from crowdwatch.recording.replay import Replay, ReplayFrame

_RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_time(text: str, now: float | None = None) -> float:
    """Epoch seconds from ``1764400000``, an ISO time (UTC unless it says otherwise) or a time
    before now such as ``-10m``, ``-2h``, ``-30s``, ``-1d``.

    Example:
        >>> parse_time("2026-01-01T00:00:00")
        1767225600.0
        >>> parse_time("-10m", now=1000.0)
        400.0
    """
    text = text.strip()
    now = time.time() if now is None else now
    match = _RELATIVE.match(text)
    if match:
        return now - float(match.group(1)) * _UNIT_S[match.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"cannot read time {text!r}: give epoch seconds, an ISO time or e.g. -10m"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


@dataclass
class RenderSummary:
    """What a rendered replay holds."""

    frames: int = 0
    first: float | None = None
    last: float | None = None
    alerts: int = 0


def draw_replay_frame(frame: ReplayFrame, heat_vmax: float | None = None) -> np.ndarray:
    """The recorded frame with its heat map and a line of metrics and alerts."""
    image = frame.image.copy()
    if frame.heat is not None and float(frame.heat.max()) > 0:
        height, width = image.shape[:2]
        scale = (frame.heat.shape[0] * frame.heat.shape[1]) / (height * width)
        heat = cv2.resize(frame.heat, (width, height), interpolation=cv2.INTER_LINEAR) * scale
        heat = smooth_for_display(heat, 0.01 * height)
        vmax = heat_vmax or float(np.percentile(heat[heat > 0], 99)) or 1e-6
        image = overlay(image, heat, vmax)
    stamp = datetime.fromtimestamp(frame.time, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    zones = "  ".join(
        f"{m.zone} {m.value('count'):.1f}" for m in frame.metrics if m.value("count") is not None
    )
    alerts = (
        f"  ALERTS: {', '.join(f'{a.zone} {a.level}' for a in frame.alerts)}"
        if frame.alerts
        else ""
    )
    return draw_header(image, f"{frame.camera} {stamp} UTC  {zones}{alerts}")


def render_replay(replay: Replay, out: Path, fps: float = 4.0) -> RenderSummary:
    """Write the replay as an MP4; returns what it holds (no frames: no file)."""
    summary = RenderSummary()
    writer: cv2.VideoWriter | None = None
    seen_alerts: set[str] = set()
    try:
        for frame in replay:
            image = draw_replay_frame(frame)
            if writer is None:
                out.parent.mkdir(parents=True, exist_ok=True)
                size = (image.shape[1], image.shape[0])
                writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
            writer.write(image)
            summary.frames += 1
            summary.first = frame.time if summary.first is None else summary.first
            summary.last = frame.time
            seen_alerts.update(alert.id for alert in frame.alerts)
    finally:
        if writer is not None:
            writer.release()
    summary.alerts = len(seen_alerts)
    return summary
