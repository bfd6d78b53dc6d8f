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
from crowdwatch.console.pictures import alert_snapshot, at_frame_size, raw_frame
from crowdwatch.console.whatif import with_thresholds
from crowdwatch.console.widgets import threshold_sliders

try:  # optional: clicking on pictures
    from streamlit_image_coordinates import streamlit_image_coordinates
except ImportError:  # pragma: no cover - depends on the installation
    streamlit_image_coordinates = None

NEW = "＋ new"
CLICK_WIDTH = 800
_UNDO = "setup-undo-version"
_FLASH = "setup-flash"


def render(ctx: ConsoleContext) -> None:
    """The Setup page."""
    st.title("Setup")
    if ctx.config is None:
        st.info("The store holds no event configuration yet; start the engine with a config.")
        return
    if not ctx.user.can_change:
        st.info(
            f"{ctx.user.name or 'You'} ({ctx.user.role}): read-only. Every control is shown as "
            "it is set; ask an operator to change it."
        )
    elif not ctx.user.authenticated and not ctx.actor():
        st.warning("Enter your name in the sidebar: every change is logged under it.")
    _undo_bar(ctx)
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
    """A frame as filmed, else an alert snapshot, at the camera's ``frame_size``: zones are
    drawn in the main stream's pixels even when a substream was analysed and recorded."""
    frame = raw_frame(ctx.store, camera.name, ctx.folders)
    if frame is None:
        frame = source_frame(camera)
    if frame is None:
        snapshot = alert_snapshot(ctx.store, camera.name, ctx.folders)
        frame = snapshot.image if snapshot else None
    return at_frame_size(frame, camera) if frame is not None else None


# -- zones --------------------------------------------------------------------------------------


def _zones_tab(ctx: ConsoleContext, camera: CameraConfig, picture: np.ndarray | None) -> None:
    existing = {zone.name: zone for zone in camera.zones}
    choice = st.selectbox("Zone", [*existing, NEW], key=f"zone-choice-{camera.name}")
    zone = existing.get(choice)
    key = f"zone-{camera.name}-{choice}"
    text_key = _points_state(key, zone.polygon if zone else [])
    others = [(z.name, z.polygon) for z in camera.zones if z.name != choice]
    ro = not ctx.user.can_change
    _click_canvas(picture, key, text_key, columns=2, zones=others, closed=True, ro=ro)
    name = st.text_input("Name", value=zone.name if zone else "", key=f"{key}-name", disabled=ro)
    capacity = st.number_input(
        "Capacity (people, 0: none)", min_value=0, step=1,
        value=zone.capacity or 0 if zone else 0, key=f"{key}-capacity", disabled=ro,
    )  # fmt: skip
    area = st.number_input(
        "Walkable area (m², 0: from the calibration)", min_value=0.0, step=1.0,
        value=float(zone.area_m2 or 0.0) if zone else 0.0, key=f"{key}-area", disabled=ro,
    )  # fmt: skip
    st.text_area(
        "Polygon points (x, y in pixels, one per line)", key=text_key, height=150, disabled=ro
    )
    save, delete = st.columns(2)
    if save.button("Save zone", type="primary", key=f"{key}-save", disabled=ro):
        _save_zone(ctx, camera, zone, name, st.session_state[text_key], capacity, area)
    if zone is not None:
        kept = [z for z in camera.zones if z.name != zone.name]
        with delete:
            _confirmed_delete(
                ctx, f"{key}-delete", f"zone {zone.name}", "change zones", camera,
                camera.model_copy(update={"zones": kept}), ro,
            )  # fmt: skip


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
    ro = not ctx.user.can_change
    _click_canvas(picture, key, text_key, columns=2, zones=zones, lines=others, closed=False, ro=ro)
    name = st.text_input("Name", value=line.name if line else "", key=f"{key}-name", disabled=ro)
    st.text_area("Start and end (x, y in pixels)", key=text_key, height=80, disabled=ro)
    save, delete = st.columns(2)
    if save.button("Save line", type="primary", key=f"{key}-save", disabled=ro):
        _save_line(ctx, camera, line, name, st.session_state[text_key])
    if line is not None:
        kept = [ln for ln in camera.lines if ln.name != line.name]
        with delete:
            _confirmed_delete(
                ctx, f"{key}-delete", f"line {line.name}", "change counting lines", camera,
                camera.model_copy(update={"lines": kept}), ro,
            )  # fmt: skip


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
    ro = not ctx.user.can_change
    _click_canvas(
        picture, key, text_key, columns=4, zones=zones, closed=False, numbered=True, ro=ro
    )
    st.text_area(
        "Points (x, y in pixels; x, y on the ground in metres)", key=text_key, height=180,
        disabled=ro,
    )  # fmt: skip
    rows = _try_parse(st.session_state[text_key], 4)
    if rows is not None and len(rows) >= 4 and all(map(math.isfinite, np.ravel(rows))):
        try:
            fit = GroundCalibration.from_points([r[:2] for r in rows], [r[2:] for r in rows])
            rms, largest = fit.rms_error_m * 100, fit.max_error_m * 100
            st.success(f"Fit: RMS error {rms:.1f} cm, largest {largest:.1f} cm")
        except CalibrationError as problem:
            st.warning(f"These points do not calibrate: {problem}")
    if st.button("Save calibration", type="primary", key=f"{key}-save", disabled=ro):
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
    if not camera.zones and not camera.lines:
        st.info("This camera has no zones yet: draw one on the Zones tab.")
        return
    ro = not ctx.user.can_change
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
            threshold_sliders(rule, f"thr-{camera.name}-{zone.name}-{i}", disabled=ro)
            for i, rule in enumerate(rules)
        ]
        new_zones.append((zone, edited))
    new_lines = []
    for line in camera.lines:
        st.markdown(f"#### Counting line {line.name}")
        if not line.alerts:
            st.caption("No rules on this line (add them in the event configuration).")
        edited = [
            threshold_sliders(rule, f"thr-{camera.name}-line-{line.name}-{i}", disabled=ro)
            for i, rule in enumerate(line.alerts)
        ]
        new_lines.append((line, edited))
    if st.button("Save thresholds", type="primary", key=f"thr-{camera.name}-save", disabled=ro):
        if not ctx.attempt("change thresholds", f"camera:{camera.name}"):
            return
        try:
            zones = [
                zone.model_copy(update={"alerts": [with_thresholds(r, t) for r, t in edited]})
                for zone, edited in new_zones
            ]
            zones = [ZoneConfig.model_validate(zone.model_dump()) for zone in zones]
            lines = [
                line.model_copy(update={"alerts": [with_thresholds(r, t) for r, t in edited]})
                for line, edited in new_lines
            ]
            lines = [LineConfig.model_validate(line.model_dump()) for line in lines]
        except (ValidationError, ValueError, KeyError) as problem:
            _show_problem("The thresholds", problem)
            return
        changed = camera.model_copy(update={"zones": zones, "lines": lines})
        _save(ctx, changed, "changed thresholds")


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
    _restore_version(ctx)


def _restore_version(ctx: ConsoleContext) -> None:
    """Make an earlier configuration version the current one again (as a new version)."""
    versions = ctx.store.config_versions()
    if len(versions) < 2:
        return
    ro = not ctx.user.can_change
    st.markdown("#### Restore an earlier version")
    earlier = list(reversed(versions[:-1]))
    choice = st.selectbox(
        "Version", earlier, key="restore-version", disabled=ro,
        format_func=lambda v: f"{v.version} · "
        f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(v.time))} UTC · {v.author}: {v.note}",
    )  # fmt: skip
    sure = st.checkbox(
        "Yes, replace the running configuration with this version", key="restore-sure",
        disabled=ro,
    )  # fmt: skip
    if st.button("Restore version", key="restore-go", disabled=ro or not sure):
        _restore(ctx, choice.version, f"restored version {choice.version}")


def _restore(ctx: ConsoleContext, version: int, note: str) -> None:
    if not ctx.attempt("restore a configuration version", f"config:{version}"):
        return
    author = ctx.actor()
    if not author:
        st.error("Enter your name in the sidebar first: every change is logged under it.")
        return
    try:
        old = ctx.store.config_version(version)
        saved = ctx.store.save_config(old.config, author=author, note=note)
    except Exception as problem:  # the store refused or failed: say so
        st.error(f"Not restored: {problem}")
        return
    ctx.config = ctx.config.model_validate(saved.config) if ctx.config else None
    st.session_state.pop(_UNDO, None)
    st.session_state[_FLASH] = f"Configuration version {version} restored as {saved.version}."
    st.rerun()


def _undo_bar(ctx: ConsoleContext) -> None:
    """The result of the last change, with a button that undoes it (restores the version
    before it)."""
    flash = st.session_state.pop(_FLASH, None)
    if flash:
        st.success(flash)
    undo = st.session_state.get(_UNDO)
    if not undo:
        return
    before, note = undo
    text, button = st.columns([4, 1], vertical_alignment="center")
    text.info(f"Last change: {note}.")
    if button.button("Undo", key="setup-undo", disabled=not ctx.user.can_change):
        _restore(ctx, before, f"undo: {note}")


def _confirmed_delete(
    ctx: ConsoleContext,
    key: str,
    what: str,
    action: str,
    camera: CameraConfig,
    without: CameraConfig,
    ro: bool,
) -> None:
    """A delete button that asks first; after it, the page offers Undo."""
    pending = f"{key}-pending"
    if not st.session_state.get(pending):
        if st.button(f"Delete {what.split()[0]}", key=key, disabled=ro):
            st.session_state[pending] = True
            st.rerun()
        return
    st.warning(f"Delete {what}? Its alert rules go with it (Undo brings them back).")
    yes, no = st.columns(2)
    if yes.button("Yes, delete", type="primary", key=f"{key}-yes", disabled=ro):
        st.session_state.pop(pending, None)
        if ctx.attempt(action, f"camera:{camera.name}"):
            _save(ctx, without, f"deleted {what}")
    if no.button("Cancel", key=f"{key}-no"):
        st.session_state.pop(pending, None)
        st.rerun()


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
    ro: bool = False,
) -> None:
    """The picture with the draft drawn on it; a click appends its pixel to the point list
    (``ro``: a plain picture, for viewers)."""
    if picture is None:
        st.info("No picture of this camera yet: type the points below.")
        return
    draft = _try_parse(st.session_state[text_key], columns) or []
    canvas = draw_setup(picture, zones, lines, draft, draft_closed=closed, numbered=numbered)
    rgb = np.ascontiguousarray(canvas[:, :, ::-1])
    if streamlit_image_coordinates is None or ro:
        st.image(rgb, width=CLICK_WIDTH)
        if not ro:
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
    author = ctx.actor()
    if not author:  # the open console: every change needs a name in the log
        st.error("Not saved: enter your name in the sidebar first (every change is logged).")
        return
    before = ctx.store.latest_config()
    try:
        version = save_camera(ctx.store, ctx.config, camera, author, note)
    except (ValidationError, ValueError) as problem:
        _show_problem("The configuration", problem)
        return
    except Exception as problem:  # the store refused or failed: say so, never lose it quietly
        st.error(f"Not saved (store error: {problem}). Try again.")
        return
    if before is not None and before.version != version.version:
        st.session_state[_UNDO] = (before.version, note)
    ctx.config = ctx.config.model_validate(version.config)
    st.session_state[_FLASH] = f"Saved as configuration version {version.version}: {note}."
    st.rerun()


def _show_problem(what: str, problem: Exception) -> None:
    if isinstance(problem, ValidationError):
        details = "; ".join(line.removeprefix("- ") for line in describe_validation_errors(problem))
    else:
        details = str(problem.args[0] if problem.args else problem)
    st.error(f"{what} was not saved: {details}")
