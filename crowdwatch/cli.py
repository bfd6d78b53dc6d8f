"""The ``crowdwatch`` command line: analyze, count, demo, config check, eval, train.

Errors a user can fix (a missing file, a dead stream, a malformed config) are printed as one line
starting with ``error:`` and exit with status 2; no traceback.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

# Quiet OpenCV's and FFmpeg's own logging before cv2 is imported anywhere: their C-level
# warnings would bury crowdwatch's one-line error messages.
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

from crowdwatch.errors import CrowdwatchError  # noqa: E402

try:  # Typer >= 0.2x vendors Click; older releases use Click itself.
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover
    import click.exceptions as click_errors

app = typer.Typer(
    help="Crowd-safety analytics: people counts, density heat maps, zones and alerts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
config_app = typer.Typer(help="Event configuration files.", no_args_is_help=True)
app.add_typer(config_app, name="config")
alerts_app = typer.Typer(help="Alerts in a store.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")


class EstimatorKind(str, Enum):
    """The estimators the command line can choose."""

    auto = "auto"
    density = "density"
    ssd = "ssd"
    yolo = "yolo"


EstimatorOption = Annotated[
    EstimatorKind | None,
    typer.Option("--estimator", "-e", help="auto, density, ssd or yolo (overrides the config)."),
]
ModelOption = Annotated[
    Path | None,
    typer.Option("--model", "-m", help="Model file for the estimator (.onnx, .pt, .yaml)."),
]


@app.command()
def analyze(
    source: Annotated[
        str | None,
        typer.Argument(
            help="Video file, image folder, stream URL or webcam index (default: the --config "
            "camera's analysis_source, else its source).",
            show_default=False,
        ),
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Event YAML.")] = None,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Run folder. One run per folder: a folder holding files is refused unless "
            "--overwrite is given.",
        ),
    ] = Path("out"),
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Replace an earlier run's outputs in --out (only a run's own files are removed).",
        ),
    ] = False,
    every: Annotated[int | None, typer.Option(help="Analyse every N-th frame.", min=1)] = None,
    fps: Annotated[
        float | None, typer.Option(help="Analyse at most F frames per second.", min=0.001)
    ] = None,
    camera: Annotated[str | None, typer.Option(help="Camera of the config to use.")] = None,
    max_frames: Annotated[
        int | None, typer.Option(help="Stop after N analysed frames.", min=1)
    ] = None,
    estimator: EstimatorOption = None,
    model: ModelOption = None,
    video: Annotated[bool, typer.Option(help="Write annotated.mp4.")] = True,
    store: Annotated[
        str | None,
        typer.Option(help="Also write metrics, alerts and health to this store (path or URL)."),
    ] = None,
    record: Annotated[
        Path | None,
        typer.Option(help="With --store: record frames and heat maps here, for replay."),
    ] = None,
    privacy_blur: Annotated[
        bool,
        typer.Option(
            "--privacy-blur",
            help="Pixelate people in the annotated video, snapshots and recording "
            "(config: privacy.blur_people).",
        ),
    ] = False,
) -> None:
    """Analyse a recording or stream: annotated video, metrics CSV, alerts, summary.

    Without SOURCE, the --config camera's own: its analysis_source (a substream) when it names
    one, else its source."""
    from crowdwatch.config import default_config, load_config
    from crowdwatch.pipeline import AnalysisOptions
    from crowdwatch.pipeline import analyze as run_analysis

    if source is None and config is None:
        raise CrowdwatchError("analyze needs a SOURCE, or a --config whose camera names one")
    event = load_config(config) if config else default_config(source)
    event = _with_estimator(event, estimator, model)
    if privacy_blur:
        event = event.model_copy(
            update={"privacy": event.privacy.model_copy(update={"blur_people": True})}
        )
    options = AnalysisOptions(
        every=every,
        fps=fps,
        max_frames=max_frames,
        write_video=video,
        progress=sys.stderr.isatty(),
        overwrite=overwrite,
    )
    summary = run_analysis(
        source,
        event,
        out,
        options,
        camera_name=camera,
        store=store,
        record=record,
        config_path=config,
    )
    _print_summary(summary, out)


@app.command()
def count(
    images: Annotated[list[Path], typer.Argument(help="Image files.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per image.")] = False,
    estimator: EstimatorOption = None,
    model: ModelOption = None,
) -> None:
    """Estimate the number of people in each image."""
    from crowdwatch.sources import read_image

    people_estimator = _estimator(estimator, model)
    for path in images:
        people = people_estimator.estimate(read_image(path)).count
        if as_json:
            typer.echo(json.dumps({"path": str(path), "count": round(people, 2)}))
        else:
            typer.echo(f"{path}: {people:.1f} people")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("out/demo"),
    every: Annotated[int, typer.Option(help="Analyse every N-th frame.", min=1)] = 2,
    estimator: EstimatorOption = None,
    store: Annotated[
        str | None,
        typer.Option(help="Store to fill for the console (default: OUT/crowdwatch.db, fresh)."),
    ] = None,
) -> None:
    """Analyse the bundled PETS 2009 sample clip with its example configuration.

    Re-runnable: each run replaces the previous demo's outputs in OUT (and, by default, its
    store and recordings there)."""
    import shutil

    from crowdwatch.config import load_config
    from crowdwatch.paths import sample_config
    from crowdwatch.pipeline import AnalysisOptions
    from crowdwatch.pipeline import analyze as run_analysis

    event = _with_estimator(load_config(sample_config()), estimator, None)
    typer.echo(f"Analysing the sample clip {event.cameras[0].source} (every {every}. frame)...")
    options = AnalysisOptions(every=every, progress=sys.stderr.isatty(), overwrite=True)
    recordings = out / "recordings"  # where the console looks, beside the store
    if store is None:
        store = str(out / "crowdwatch.db")
        for stale in (
            out / name for name in ("crowdwatch.db", "crowdwatch.db-wal", "crowdwatch.db-shm")
        ):
            stale.unlink(missing_ok=True)  # a fresh demo store each time, with its recordings
        shutil.rmtree(recordings, ignore_errors=True)
    summary = run_analysis(
        None, event, out, options, store=store, record=recordings, config_path=sample_config()
    )
    _print_summary(summary, out)
    typer.echo(f"store: {store}; recordings: {recordings}")


@config_app.command("check")
def config_check(
    file: Annotated[Path, typer.Argument(help="Event YAML to validate.")],
    offline: Annotated[bool, typer.Option(help="Do not open camera sources.")] = False,
) -> None:
    """Validate an event configuration and name every problem.

    A camera analysed on other frames than its coordinates are drawn on (its ``analysis_source``,
    or frames of another size than its ``frame_size``) is named with the source and the scale."""
    from crowdwatch.config import load_config
    from crowdwatch.pipeline.geometry import FrameCheck, check_frames

    event = load_config(file)
    found = FrameCheck() if offline else check_frames(event)
    if found.problems:
        problems = found.problems
        raise CrowdwatchError(f"{file}: {len(problems)} problem(s):\n" + "\n".join(problems))
    for view in found.views:
        if view.scaled or view.camera.analysis_source is not None:
            typer.echo(view.describe())
    zones = sum(len(camera.zones) for camera in event.cameras)
    typer.echo(f"{file}: OK ({len(event.cameras)} camera(s), {zones} zone(s))")


@alerts_app.command("export")
def alerts_export(
    store: Annotated[str, typer.Option(help="Store (path or postgresql:// URL).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the messages.")],
    export_format: Annotated[
        str, typer.Option("--format", help="cap (OASIS CAP 1.2 XML) or json.")
    ] = "cap",
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Event YAML: its venue gives zones their polygons."),
    ] = None,
    camera: Annotated[str | None, typer.Option(help="Only this camera's (or venue's).")] = None,
) -> None:
    """Export every alert's messages (opened, acknowledged, closed), one file each."""
    from crowdwatch.config import load_config
    from crowdwatch.pipeline.outputs import cap_formatter, stored_alert_events
    from crowdwatch.store import open_store
    from crowdwatch.store.sinks import WallClock

    if export_format not in ("cap", "json"):
        raise CrowdwatchError(f"--format must be cap or json, not {export_format!r}")
    event_config = load_config(config) if config else None
    to_cap = cap_formatter(event_config, WallClock())
    with open_store(store) as opened:
        alerts = opened.alerts(camera=camera)
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for alert in alerts:
        for event in stored_alert_events(alert):
            name = f"{alert.id}-{event.kind}"
            if export_format == "json":
                body = json.dumps(event.to_dict(), allow_nan=False).encode("utf-8")
                (out / f"{name}.json").write_bytes(body)
            else:
                body = to_cap(event)
                (out / f"{name}.xml").write_bytes(body)
            written += 1
    typer.echo(f"{written} message(s) of {len(alerts)} alert(s) written to {out}")


@app.command("eval")
def evaluate(
    path: Annotated[Path, typer.Argument(help="Dataset folder in its standard layout.")],
    dataset: Annotated[str, typer.Option(help="shanghaitech, brt or pets.")],
    split: Annotated[str, typer.Option(help="all, or val (our validation split).")] = "all",
    limit: Annotated[int | None, typer.Option(help="At most N images.")] = None,
    estimator: EstimatorOption = None,
    model: ModelOption = None,
) -> None:
    """Counting accuracy (MAE, MSE) and speed on an annotated dataset."""
    from crowdwatch.evaluation.evaluate import evaluate as run_evaluation

    result = run_evaluation(dataset, path, _estimator(estimator, model), split=split, limit=limit)
    typer.echo(result.summary())


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train(ctx: typer.Context) -> None:
    """Train the density model (options: see `crowdwatch train --help-train`)."""
    from crowdwatch.training.train import main as train_main

    args = ["--help" if arg == "--help-train" else arg for arg in ctx.args]
    raise typer.Exit(train_main(args))


def _with_estimator(event, kind: EstimatorKind | None, model: Path | None):
    """The event config with the command line's estimator choice applied."""
    update: dict[str, object] = {}
    if kind:
        update["kind"] = kind.value
    if model:
        update["model"] = str(model)
    if not update:
        return event
    estimator = event.estimator.model_validate({**event.estimator.model_dump(), **update})
    return event.model_copy(update={"estimator": estimator})


def _estimator(kind: EstimatorKind | None, model: Path | None):
    from crowdwatch.config import EstimatorConfig
    from crowdwatch.estimators import make_estimator

    chosen = kind.value if kind else "auto"
    return make_estimator(EstimatorConfig(kind=chosen, model=str(model) if model else None))


def _print_summary(summary, out: Path) -> None:
    status = "done" if summary.completed else f"stopped ({summary.error})"
    typer.echo(
        f"{status}: {summary.frames_analysed} frames in {summary.wall_seconds:.1f} s "
        f"({summary.analysed_fps:.1f} frames/s, {summary.estimator} estimator "
        f"{summary.estimator_ms_per_frame:.0f} ms/frame)"
    )
    typer.echo(f"people: mean {summary.mean_count:.1f}, peak {summary.peak_count:.1f}")
    for zone in summary.zones.values():
        density = f", peak {zone.peak_density:.2f}/m2" if zone.peak_density is not None else ""
        alerts = ", ".join(f"{n} {level}" for level, n in zone.alerts.items()) or "no alerts"
        typer.echo(f"  zone {zone.zone}: peak {zone.peak_count:.1f} people{density}; {alerts}")
    for line in summary.lines.values():
        typer.echo(
            f"  line {line.line} ({line.length_m:.1f} m): {line.crossed_in:.0f} in, "
            f"{line.crossed_out:.0f} out; peak {line.peak_flow_rate:.1f} people/m/min"
        )
    typer.echo(f"outputs: {out}/annotated.mp4, metrics.csv, alerts.jsonl, summary.json")


@app.command()
def console(
    store: Annotated[
        str, typer.Option(help="Store to open (path or URL); `crowdwatch demo` fills the default.")
    ] = "out/demo/crowdwatch.db",
    recordings: Annotated[
        Path | None,
        typer.Option(help="Recording folder given to `crowdwatch run --record` (for replay)."),
    ] = None,
    port: Annotated[int, typer.Option(help="Port to serve the console on.")] = 8501,
    address: Annotated[str, typer.Option(help="Address to listen on.")] = "localhost",
    allow_open: Annotated[
        bool,
        typer.Option(
            "--allow-open",
            help="Serve a store without users (everybody an operator) on a non-loopback address.",
        ),
    ] = False,
) -> None:
    """Open the operator console (Streamlit) on a store: live wall, alerts, setup, review."""
    import crowdwatch.console
    from crowdwatch.console.auth import open_console_refusal

    if "://" in store or Path(store).expanduser().exists():
        from crowdwatch.store import open_store

        with open_store(store) as opened:
            open_store_has_users = bool(opened.users())
        refusal = (
            None
            if open_store_has_users
            else open_console_refusal(address, None, allowed=allow_open)
        )
        if refusal is not None:
            raise CrowdwatchError(f"console not started: {refusal}")

    # The script's path only: importing it would run the console here.
    script = Path(crowdwatch.console.__file__).with_name("streamlit_app.py")
    command = [
        sys.executable, "-m", "streamlit", "run", str(script),
        "--server.port", str(port), "--server.address", address,
        "--server.headless", "true", "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer",
        "--", "--store", store,
    ]  # fmt: skip
    if recordings is not None:
        command += ["--recordings", str(recordings)]
    if allow_open:
        command.append("--allow-open")
    typer.echo(f"crowdwatch console on http://{address}:{port} (store: {store}); Ctrl-C stops it")
    sys.stdout.flush()
    # Become the Streamlit server (no child left behind when this process is stopped).
    os.execv(sys.executable, command)


@app.command("user")
def console_user(
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str, typer.Option(help="operator (may change things) or viewer.")] = "operator",
    store: Annotated[str, typer.Option(help="Store (path or URL).")] = "out/demo/crowdwatch.db",
    remove: Annotated[bool, typer.Option("--remove", help="Delete the user.")] = False,
) -> None:
    """Add a console user (asks for the password; only its hash is stored), or remove one.

    Once a store has users, the console asks everybody to log in.
    """
    from crowdwatch.console.auth import check_role, hash_password
    from crowdwatch.store import open_store

    with open_store(store) as opened:
        if remove:
            opened.remove_user(name)
            opened.log_action("cli", "user_removed", f"user:{name}")
            typer.echo(f"removed user {name}")
            return
        check_role(role)
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        opened.set_user(name, role, hash_password(password))
        opened.log_action("cli", "user_set", f"user:{name}", {"role": role})
    typer.echo(f"user {name} ({role}) saved in {store}")


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="Event YAML with the cameras to watch.")],
    store: Annotated[
        str, typer.Option(help="Store (path or postgresql:// URL).")
    ] = "crowdwatch.db",
    record: Annotated[
        Path | None, typer.Option(help="Record video segments and heat maps into this folder.")
    ] = None,
    fps: Annotated[
        float, typer.Option(help="Analysis rate of cameras without analysis_fps.", min=0.01)
    ] = 2.0,
    segment_s: Annotated[
        float | None,
        typer.Option(help="Length of a recorded segment (config: recording.segment_s, 60).", min=1),
    ] = None,
    quota_gb: Annotated[
        float | None,
        typer.Option(help="Recording disk quota per camera, GB (config: recording.quota_gb, 2)."),
    ] = None,
    privacy_blur: Annotated[
        bool,
        typer.Option(
            "--privacy-blur",
            help="Pixelate people in recordings and snapshots (config: privacy.blur_people).",
        ),
    ] = False,
    keep_days: Annotated[
        float | None, typer.Option(help="Keep metrics and camera history this many days.")
    ] = 30.0,
    ray: Annotated[
        str | None,
        typer.Option("--ray", help="Run cameras as Ray actors on this cluster (HOST:PORT, auto)."),
    ] = None,
    cameras_per_host: Annotated[
        int, typer.Option(help="With --ray: cameras sharing one actor process and model.", min=1)
    ] = 4,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    status_every: Annotated[
        float, typer.Option(help="Print every camera's state this often (0: never).")
    ] = 10.0,
) -> None:
    """Watch every camera of an event live, into the store, until Ctrl-C or SIGTERM."""
    import dataclasses
    import time as clock

    from crowdwatch.config import load_config
    from crowdwatch.engine import EngineOptions, WorkerOptions, run_engine
    from crowdwatch.pipeline.outputs import recording_options
    from crowdwatch.store import Retention

    recording = None
    if record is not None:
        recording = recording_options(load_config(config), record, fps=fps)
        overrides = {}
        if segment_s is not None:
            overrides["segment_s"] = segment_s
        if quota_gb is not None:
            overrides["quota_bytes"] = int(quota_gb * 1024**3)
        recording = dataclasses.replace(recording, **overrides)
    retention = Retention(metrics_days=keep_days, health_days=keep_days) if keep_days else None
    options = EngineOptions(
        worker=WorkerOptions(default_fps=fps, recording=recording),
        retention=retention,
        ray_address=ray,
        ray_cameras_per_host=cameras_per_host,
        privacy_blur=privacy_blur,
    )
    last_print = [0.0]

    def print_status(engine) -> None:
        if status_every <= 0 or clock.monotonic() - last_print[0] < status_every:
            return
        last_print[0] = clock.monotonic()
        for health in engine.status():
            typer.echo(_health_line(health))

    typer.echo(f"watching {config} into {store}; Ctrl-C stops")
    run_engine(config, store, options, duration_s=duration, on_tick=print_status)
    typer.echo("stopped")


@app.command()
def replay(
    camera: Annotated[str, typer.Argument(help="Camera to replay.")],
    start: Annotated[str, typer.Option(help="From: epoch seconds, ISO time (UTC) or -10m.")],
    end: Annotated[str, typer.Option(help="To: epoch seconds, ISO time (UTC) or -0s.")] = "-0s",
    store: Annotated[str, typer.Option(help="Store (path or URL).")] = "crowdwatch.db",
    recordings: Annotated[
        Path, typer.Option(help="Recording folder given to `crowdwatch run --record`.")
    ] = Path("recordings"),
    out: Annotated[Path, typer.Option("--out", "-o", help="Video to write.")] = Path("replay.mp4"),
) -> None:
    """Replay a camera's recording for a time range with its heat maps, metrics and alerts."""
    from crowdwatch.recording import Replay
    from crowdwatch.recording.render import parse_time, render_replay
    from crowdwatch.store import open_store

    first, last = parse_time(start), parse_time(end)
    with open_store(store) as opened:
        session = Replay(opened, recordings, camera, first, last)
        overview = session.overview
        typer.echo(
            f"{camera}: {len(overview.segments)} segment(s), {len(overview.snapshots)} heat "
            f"map(s), {len(overview.metrics)} metric sample(s), {len(overview.alerts)} alert(s)"
        )
        summary = render_replay(session, out)
    for problem in session.problems:
        typer.echo(f"problem: {problem}", err=True)
    if not summary.frames:
        raise CrowdwatchError(f"no recorded frames of {camera} between {start} and {end}")
    typer.echo(f"wrote {out}: {summary.frames} frames, {summary.alerts} alert(s) in view")


@app.command()
def status(
    store: Annotated[str, typer.Option(help="Store (path or URL).")] = "crowdwatch.db",
) -> None:
    """Every camera's state, analysis rate and problems, and the open alerts, from the store."""
    from crowdwatch.store import open_store

    with open_store(store) as opened:
        cameras, alerts = opened.health(), opened.active_alerts()
    if not cameras:
        typer.echo(f"no camera has reported to {store} yet")
    for health in cameras:
        typer.echo(_health_line(health))
    typer.echo(f"{len(alerts)} open alert(s)")
    for alert in alerts:
        typer.echo(f"  {alert.camera}/{alert.zone}: {alert.level} ({alert.rule}), id {alert.id}")


def _health_line(health) -> str:
    rate = f"{health.analysis_fps:.1f}/{health.target_fps or 0:.1f} fps"
    line = (
        f"  {health.camera:<16} {health.state:<12} {rate:<14} "
        f"analysed {health.analysed_frames}, skipped {health.skipped_frames}, "
        f"reconnects {health.reconnects}"
    )
    return line + (f"  ({health.error})" if health.error else "")


@app.command()
def calibrate(
    config: Annotated[Path, typer.Argument(help="Event YAML with the camera's calibration.")],
    camera: Annotated[str | None, typer.Option(help="Camera of the config.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the check images.")] = Path(
        "out/calibration"
    ),
) -> None:
    """Check a camera's ground calibration: fit errors, zone areas, a bird's-eye view."""
    import cv2

    from crowdwatch.calibration.settings import build_calibration
    from crowdwatch.config import load_config
    from crowdwatch.pipeline.geometry import calibration_report, drawn_frame_size
    from crowdwatch.sources import open_source

    chosen = load_config(config).camera(camera)
    if chosen.calibration is None:
        raise CrowdwatchError(f"camera {chosen.name!r} has no 'calibration' section in {config}")
    calibration = build_calibration(chosen.calibration)
    size = drawn_frame_size(chosen)  # the main stream's: the calibration's pixels
    for line in calibration_report(chosen, calibration, size).lines():
        typer.echo(line)
    with open_source(chosen.source) as source:
        image = next(iter(source)).image
    corners = np.array(chosen.calibration.image_points or chosen.calibration.rectangle)
    ground = calibration.to_ground(corners)
    margin = 3.0
    bounds = (*(np.nanmin(ground, axis=0) - margin), *(np.nanmax(ground, axis=0) + margin))
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"birdseye_{chosen.name}.png"
    cv2.imwrite(str(path), calibration.birds_eye(image, 0.05, tuple(bounds)))
    typer.echo(f"bird's-eye view of the calibrated ground (5 cm a pixel): {path}")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app, turning known errors into one clean line.

    Every error a user can cause (a bad option, a missing file, a malformed config, a store that
    cannot be opened) ends as one ``error:`` line on stderr and exit status 2.
    """
    from pydantic import ValidationError

    from crowdwatch.config.load import describe_validation_errors

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        code = app(args=argv, prog_name="crowdwatch", standalone_mode=False)
    except click_errors.NoArgsIsHelpError as exc:
        typer.echo(exc.format_message())
        sys.exit(0)
    except click_errors.UsageError as exc:
        # A bad option or argument (``--every 0``): Click's message, without its framed box.
        hint = f" (see {exc.ctx.command_path} --help)" if exc.ctx else ""
        _fail(f"{exc.format_message()}{hint}")
    except typer.Abort:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except click_errors.ClickException as exc:
        _fail(exc.format_message())
    except CrowdwatchError as exc:
        _fail(str(exc))
    except ValidationError as exc:
        _fail("; ".join(line.removeprefix("- ") for line in describe_validation_errors(exc)))
    except (KeyError, ValueError) as exc:
        # Raised for bad user choices (unknown camera name, bad --fps); their text names them.
        _fail(str(exc.args[0]) if exc.args else str(exc))
    except RecursionError:
        _fail("input nested too deeply to process")
    except KeyboardInterrupt:
        typer.echo("interrupted; outputs written so far are kept", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str) -> None:
    """Print ``message`` after ``error:`` (a config's problems follow it, one per line), exit 2."""
    typer.echo(f"error: {message}", err=True)
    sys.exit(2)


if __name__ == "__main__":
    main()
