"""Setup: draw zones and counting lines by clicking on a camera's picture, calibrate the ground,
tune each zone's alert thresholds with sliders, and see who changed what.

Every save writes a new configuration version to the store; the running engine picks it up
within seconds. Clicking uses the ``streamlit-image-coordinates`` component when it is
installed; the point lists can always be typed as well.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import streamlit as st
from pydantic import ValidationError

from crowdwatch.alerts import zone_rules
from crowdwatch.calibration import CalibrationError, GroundCalibration
from crowdwatch.config.load import describe_validation_errors
from crowdwatch.config.schema import (
    CalibrationConfig,
    CameraConfig,
    LineConfig,
    ZoneConfig,
)
from crowdwatch.console.context import ConsoleContext
from crowdwatch.console.data import save_camera, source_frame
from crowdwatch.console.geometry import (
    click_to_image,
    draw_setup,
    format_points,
    parse_points,
)
from crowdwatch.console.pictures import alert_snapshot, raw_frame
from crowdwatch.console.whatif import with_thresholds
from crowdwatch.console.widgets import threshold_sliders

try:  # optional: clicking on pictures
    from streamlit_image_coordinates import streamlit_image_coordinates
except ImportError:  # pragma: no cover - depends on the installation
    streamlit_image_coordinates = None

NEW = "＋ new"
CLICK_WIDTH = 800


def render(ctx: ConsoleContext) -> None:
    """The Setup page."""
    st.title("Setup")
    if ctx.config is None:
        st.info("The store holds no event configuration yet; start the engine with a config.")
        return
    names = [camera.name for camera in ctx.config.cameras]
    name = st.selectbox("Camera", names, key="setup-camera")
    camera = ctx.config.camera(name)
    picture = _picture(ctx, camera)
    zones, lines, calibration, thresholds, changes = st.tabs(
        ["Zones", "Counting lines", "Calibration", "Thresholds", "Change log"]
    )
    with zones:
        _zones_tab(ctx, camera, picture)
    with lines:
        _lines_tab(ctx, camera, picture)
    with calibration:
        _calibration_tab(ctx, camera, picture)
    with thresholds:
        _thresholds_tab(ctx, camera)
    with changes:
        _change_log(ctx)


def _picture(ctx: ConsoleContext, camera: CameraConfig) -> np.ndarray | None:
    """A frame as filmed (zones are drawn in the camera's own pixels), else an alert snapshot."""
    frame = raw_frame(ctx.store, camera.name, ctx.folders)
    if frame is None:
        frame = source_frame(camera)
    if frame is None:
        snapshot = alert_snapshot(ctx.store, camera.name, ctx.folders)
        frame = snapshot.image if snapshot else None
    return frame


# -- zones --------------------------------------------------------------------------------------


def _zones_tab(ctx: ConsoleContext, camera: CameraConfig, picture: np.ndarray | None) -> None:
    existing = {zone.name: zone for zone in camera.zones}
    choice = st.selectbox("Zone", [*existing, NEW], key=f"zone-choice-{camera.name}")
    zone = existing.get(choice)
    key = f"zone-{camera.name}-{choice}"
    text_key = _points_state(key, zone.polygon if zone else [])
    others = [(z.name, z.polygon) for z in camera.zones if z.name != choice]
    _click_canvas(picture, key, text_key, columns=2, zones=others, closed=True)
    name = st.text_input("Name", value=zone.name if zone else "", key=f"{key}-name")
    capacity = st.number_input(
        "Capacity (people, 0: none)", min_value=0, step=1,
        value=zone.capacity or 0 if zone else 0, key=f"{key}-capacity",
    )  # fmt: skip
    area = st.number_input(
        "Walkable area m² (0: from the calibration)", min_value=0.0, step=1.0,
        value=float(zone.area_m2 or 0.0) if zone else 0.0, key=f"{key}-area",
    )  # fmt: skip
    st.text_area("Polygon points (x, y pixels, one per line)", key=text_key, height=150)
    save, delete = st.columns(2)
    if save.button("Save zone", type="primary", key=f"{key}-save"):
        _save_zone(ctx, camera, zone, name, st.session_state[text_key], capacity, area)
    deleting = zone is not None and delete.button("Delete zone", key=f"{key}-delete")
    if deleting and ctx.attempt("change zones", f"camera:{camera.name}"):
        kept = [z for z in camera.zones if z.name != zone.name]
        _save(ctx, camera.model_copy(update={"zones": kept}), f"deleted zone {zone.name}")


def _save_zone(
    ctx: ConsoleContext,
    camera: CameraConfig,
    old: ZoneConfig | None,
    name: str,
    text: str,
    capacity: int,
    area: float,
) -> None:
    if not ctx.attempt("change zones", f"camera:{camera.name}"):
        return
    try:
        zone = ZoneConfig(
            name=name.strip(),
            polygon=parse_points(text, 2),
            capacity=int(capacity) or None,
            area_m2=float(area) or None,
            alerts=old.alerts if old else [],
        )
    except (ValidationError, ValueError) as problem:
        _show_problem("The zone", problem)
        return
    zones = [z for z in camera.zones if old is None or z.name != old.name]
    if any(z.name == zone.name for z in zones):
        st.error(f"Camera {camera.name} already has a zone called {zone.name!r}.")
        return
    position = [z.name for z in camera.zones].index(old.name) if old else len(zones)
    zones.insert(position, zone)
    _save(ctx, camera.model_copy(update={"zones": zones}), f"saved zone {zone.name}")


# -- counting lines -----------------------------------------------------------------------------


def _lines_tab(ctx: ConsoleContext, camera: CameraConfig, picture: np.ndarray | None) -> None:
    existing = {line.name: line for line in camera.lines}
    choice = st.selectbox("Counting line", [*existing, NEW], key=f"line-choice-{camera.name}")
    line = existing.get(choice)
    key = f"line-{camera.name}-{choice}"
    text_key = _points_state(key, [line.start, line.end] if line else [])
    st.caption("Two points: start, then end. People crossing to the left of start→end count in.")
    others = [(ln.name, ln.start, ln.end) for ln in camera.lines if ln.name != choice]
    zones = [(z.name, z.polygon) for z in camera.zones]
    _click_canvas(picture, key, text_key, columns=2, zones=zones, lines=others, closed=False)
    name = st.text_input("Name", value=line.name if line else "", key=f"{key}-name")
    st.text_area("Start and end (x, y pixels)", key=text_key, height=80)
    save, delete = st.columns(2)
    if save.button("Save line", type="primary", key=f"{key}-save"):
        _save_line(ctx, camera, line, name, st.session_state[text_key])
    deleting = line is not None and delete.button("Delete line", key=f"{key}-delete")
    if deleting and ctx.attempt("change counting lines", f"camera:{camera.name}"):
        kept = [ln for ln in camera.lines if ln.name != line.name]
        _save(ctx, camera.model_copy(update={"lines": kept}), f"deleted line {line.name}")


def _save_line(
    ctx: ConsoleContext, camera: CameraConfig, old: LineConfig | None, name: str, text: str
) -> None:
    if not ctx.attempt("change counting lines", f"camera:{camera.name}"):
        return
    try:
        points = parse_points(text, 2)
        if len(points) != 2:
            raise ValueError(f"a counting line needs exactly 2 points, got {len(points)}")
        line = LineConfig(
            name=name.strip(), start=points[0], end=points[1], alerts=old.alerts if old else []
        )
    except (ValidationError, ValueError) as problem:
        _show_problem("The counting line", problem)
        return
    lines = [ln for ln in camera.lines if old is None or ln.name != old.name]
    if any(ln.name == line.name for ln in lines):
        st.error(f"Camera {camera.name} already has a line called {line.name!r}.")
        return
    lines.append(line)
    _save(ctx, camera.model_copy(update={"lines": lines}), f"saved line {line.name}")


# -- calibration --------------------------------------------------------------------------------


def _calibration_tab(ctx: ConsoleContext, camera: CameraConfig, picture: np.ndarray | None) -> None:
    st.caption(
        "Click four or more points on the ground, then add each one's position in metres "
        "(x, y on a map of the site): `x_px, y_px, x_m, y_m` per line. Clicked points get "
        "`nan, nan` metres to fill in."
    )
    key = f"calibration-{camera.name}"
    text_key = _points_state(key, _calibration_rows(camera.calibration), columns=4)
    zones = [(z.name, z.polygon) for z in camera.zones]
    _click_canvas(picture, key, text_key, columns=4, zones=zones, closed=False, numbered=True)
    st.text_area("Points (x_px, y_px, x_m, y_m)", key=text_key, height=180)
    rows = _try_parse(st.session_state[text_key], 4)
    if rows is not None and len(rows) >= 4 and all(map(math.isfinite, np.ravel(rows))):
        try:
            fit = GroundCalibration.from_points([r[:2] for r in rows], [r[2:] for r in rows])
            rms, largest = fit.rms_error_m * 100, fit.max_error_m * 100
            st.success(f"Fit: RMS error {rms:.1f} cm, largest {largest:.1f} cm")
        except CalibrationError as problem:
            st.warning(f"These points do not calibrate: {problem}")
    if st.button("Save calibration", type="primary", key=f"{key}-save"):
        _save_calibration(ctx, camera, st.session_state[text_key])


def _save_calibration(ctx: ConsoleContext, camera: CameraConfig, text: str) -> None:
    if not ctx.attempt("change the calibration", f"camera:{camera.name}"):
        return
    try:
        rows = parse_points(text, 4)
        config = CalibrationConfig(
            image_points=[r[:2] for r in rows], ground_points=[r[2:] for r in rows]
        )
        GroundCalibration.from_points(config.image_points, config.ground_points)
    except (ValidationError, ValueError) as problem:
        _show_problem("The calibration", problem)
        return
    _save(ctx, camera.model_copy(update={"calibration": config}), "saved calibration")


def _calibration_rows(config: CalibrationConfig | None) -> list[tuple[float, ...]]:
    if config is None or config.image_points is None or config.ground_points is None:
        return []
    return [(*i, *g) for i, g in zip(config.image_points, config.ground_points, strict=True)]


# -- thresholds ---------------------------------------------------------------------------------


def _thresholds_tab(ctx: ConsoleContext, camera: CameraConfig) -> None:
    if not camera.zones:
        st.info("This camera has no zones yet: draw one on the Zones tab.")
        return
    area_known = camera.calibration is not None
    new_zones = []
    for zone in camera.zones:
        rules = zone_rules(zone.alerts, area_known=area_known or zone.area_m2 is not None)
        st.markdown(f"#### {zone.name}")
        if not zone.alerts and rules:
            st.caption("Uses the literature defaults; saving makes them this zone's own rules.")
        if not rules:
            st.caption("No rules: give the zone an area (calibration or m²) for density alerts.")
        edited = [
            threshold_sliders(rule, f"thr-{camera.name}-{zone.name}-{i}")
            for i, rule in enumerate(rules)
        ]
        new_zones.append((zone, edited))
    if st.button("Save thresholds", type="primary", key=f"thr-{camera.name}-save"):
        if not ctx.attempt("change thresholds", f"camera:{camera.name}"):
            return
        try:
            zones = [
                zone.model_copy(update={"alerts": [with_thresholds(r, t) for r, t in edited]})
                for zone, edited in new_zones
            ]
            zones = [ZoneConfig.model_validate(zone.model_dump()) for zone in zones]
        except (ValidationError, ValueError, KeyError) as problem:
            _show_problem("The thresholds", problem)
            return
        _save(ctx, camera.model_copy(update={"zones": zones}), "changed thresholds")


# -- change log ---------------------------------------------------------------------------------


def _change_log(ctx: ConsoleContext) -> None:
    changes = ctx.store.config_changes()
    if not changes:
        st.caption("No configuration changes recorded.")
        return
    table = pd.DataFrame(
        {
            "version": [c.version for c in changes],
            "time (UTC)": [
                time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(c.time)) for c in changes
            ],
            "who": [c.author for c in changes],
            "what": [c.path for c in changes],
            "old": [str(c.old) for c in changes],
            "new": [str(c.new) for c in changes],
        }
    ).iloc[::-1]
    st.dataframe(table, hide_index=True)


# -- shared -------------------------------------------------------------------------------------


def _points_state(key: str, points, columns: int = 2) -> str:
    """The session key of a point list's text, seeded from the saved points on first view."""
    text_key = f"{key}-points"
    if text_key not in st.session_state:
        st.session_state[text_key] = format_points([tuple(p)[:columns] for p in points])
    return text_key


def _click_canvas(
    picture: np.ndarray | None,
    key: str,
    text_key: str,
    columns: int,
    zones=(),
    lines=(),
    closed: bool = True,
    numbered: bool = False,
) -> None:
    """The picture with the draft drawn on it; a click appends its pixel to the point list."""
    if picture is None:
        st.info("No picture of this camera yet: type the points below.")
        return
    draft = _try_parse(st.session_state[text_key], columns) or []
    canvas = draw_setup(picture, zones, lines, draft, draft_closed=closed, numbered=numbered)
    rgb = np.ascontiguousarray(canvas[:, :, ::-1])
    if streamlit_image_coordinates is None:
        st.image(rgb, width=CLICK_WIDTH)
        st.caption("Install streamlit-image-coordinates to add points by clicking.")
        return
    click = streamlit_image_coordinates(
        rgb, width=CLICK_WIDTH, key=f"{key}-click", cursor="crosshair"
    )
    if click and click != st.session_state.get(f"{key}-last-click"):
        st.session_state[f"{key}-last-click"] = click
        x, y = click_to_image(click, (picture.shape[1], picture.shape[0]))
        extra = ", nan, nan" if columns == 4 else ""
        current = st.session_state[text_key].rstrip()
        st.session_state[text_key] = f"{current}\n{x:g}, {y:g}{extra}".lstrip()
        st.rerun()
    undo, clear = st.columns(2)
    if undo.button("Undo last point", key=f"{key}-undo"):
        st.session_state[text_key] = "\n".join(st.session_state[text_key].splitlines()[:-1])
        st.rerun()
    if clear.button("Clear points", key=f"{key}-clear"):
        st.session_state[text_key] = ""
        st.rerun()


def _try_parse(text: str, columns: int) -> list[tuple[float, ...]] | None:
    try:
        return parse_points(text, columns)
    except ValueError:
        return None


def _save(ctx: ConsoleContext, camera: CameraConfig, note: str) -> None:
    assert ctx.config is not None
    try:
        version = save_camera(ctx.store, ctx.config, camera, ctx.actor() or "operator", note)
    except (ValidationError, ValueError) as problem:
        _show_problem("The configuration", problem)
        return
    st.success(f"Saved as configuration version {version.version}: {note}.")
    ctx.config = ctx.config.model_validate(version.config)


def _show_problem(what: str, problem: Exception) -> None:
    if isinstance(problem, ValidationError):
        details = "; ".join(line.removeprefix("- ") for line in describe_validation_errors(problem))
    else:
        details = str(problem.args[0] if problem.args else problem)
    st.error(f"{what} was not saved: {details}")
