"""How many cameras one machine holds live: N cameras at 2 analysed frames per second each.

Every camera plays a 1280x720 H.264 copy of the bundled PETS clip at a camera's frame rate
(25 fps by default, decoded in full like a real stream) through the live engine with the default
model, into a SQLite store. Two set-ups, side by side:

- ``deployed``: what an event runs: the sample config's ground calibration, its two zones and
  its counting line (scaled to the clip's size), so optical flow, crowd velocity, pressure and
  line flow all run, with the sample's density and flow alert rules and its count rules
  replaced by one without latch that opens alerts as people walk in (for the capture -> alert
  latency), and recording on (video segments, heat snapshots, live preview);
- ``bare``: no calibration, no zones, no lines, no recording (the old figure).

With ``--substream WxH`` (e.g. 640x360) every camera also has a substream: the same clip at that
size and the same frame rate, which the config names as the camera's ``analysis_source`` (its
zones, line and calibration stay in the main stream's pixels, ``frame_size``), so the engine
decodes and analyses the substream instead, as a video-management system's detect stream.

For N = 1, 2, ... it measures each camera's achieved analysis rate and the analysis ticks it had
to skip; a camera "falls behind" when it reaches less than 95% of its rate or skips more than 2%
of its ticks. It prints the process's CPU (in cores), memory, analysis ms per frame, and the
p95 latency from a frame's capture to its metrics / its alert being committed in the store. It
also times decoding the stream alone, to show what share of the machine decoding every frame
of every camera takes.

    python benchmarks/cameras_capacity.py                     # both set-ups, up to 12 cameras
    python benchmarks/cameras_capacity.py --setup deployed --cameras 4 8 12 --seconds 20
    python benchmarks/cameras_capacity.py --substream 640x360        # analyse 640x360 substreams
    python benchmarks/cameras_capacity.py --setup deployed --device cuda --max-batch 8 \
        --cameras 8 16 24 32                                         # one GPU (onnxruntime-gpu)
    python benchmarks/cameras_capacity.py --setup deployed --substream 640x360 --sparse-gate \
        --cameras 4 6 8                          # near-empty cameras with the SSD gate on

The machine's other load shows in the load average printed with each row: on a shared machine
the count is a lower bound.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

from crowdwatch.config import CameraConfig, parse_config
from crowdwatch.config.scaling import camera_for_frames
from crowdwatch.engine import Engine, EngineOptions, WorkerOptions
from crowdwatch.paths import sample_video
from crowdwatch.recording.recorder import RecordingOptions
from crowdwatch.store import open_store

SAMPLE_CONFIG = Path(__file__).resolve().parents[1] / "sample_videos" / "pets2009_s2l1.yaml"
#: The sample clip's frame size, which the sample config's pixels refer to.
SAMPLE_SIZE = (768, 576)
#: Opens an alert whenever someone is in the zone (no latch, no cooldown): latency samples.
LATENCY_RULE = {
    "metric": "count",
    "latch_s": 0,
    "clear_latch_s": 0,
    "cooldown_s": 0,
    "levels": {"advisory": {"threshold": 0.6, "clear": 0.3}},
}


def deployed_camera(
    name: str, clip: Path, *, width: int, height: int, substream: Path | None = None
) -> dict:
    """The sample config's camera (calibration, zones, counting line, alert rules) scaled to a
    width x height copy of the clip (its ``frame_size``), its zones' count rules replaced by the
    latency rule; with ``substream``, that file is its ``analysis_source``."""
    sample = dict(yaml.safe_load(SAMPLE_CONFIG.read_text())["cameras"][0])
    sample.pop("source_fps", None)  # the copies are encoded at the camera's own rate
    sample.update(name=name, source=str(clip), frame_size=list(SAMPLE_SIZE))
    drawn = CameraConfig.model_validate(sample)
    camera = camera_for_frames(drawn, width=width, height=height).model_dump(mode="json")
    camera["zones"] = [
        {**zone, "alerts": [
            *(rule for rule in zone["alerts"] if rule["metric"] != "count"), LATENCY_RULE,
        ]}
        for zone in camera["zones"]
    ]  # fmt: skip
    if substream is not None:
        camera["analysis_source"] = str(substream)
    return camera


def bare_camera(
    name: str, clip: Path, *, width: int, height: int, substream: Path | None = None
) -> dict:
    """A camera with no zones, lines or calibration on the clip (or its substream)."""
    if substream is None:
        return {"name": name, "source": str(clip)}
    return {
        "name": name,
        "source": str(clip),
        "analysis_source": str(substream),
        "frame_size": [width, height],
    }


def decode_ms_per_frame(clip: Path, frames: int = 150) -> float:
    """Wall ms to decode one frame of the clip (OpenCV/FFmpeg, as the capture threads do)."""
    capture = cv2.VideoCapture(str(clip))
    started, count = time.perf_counter(), 0
    while count < frames:
        ok, _ = capture.read()
        if not ok:
            break
        count += 1
    capture.release()
    return 1000 * (time.perf_counter() - started) / max(count, 1)


def make_clip(folder: Path, width: int, height: int, fps: int, seconds: int) -> Path:
    """The sample clip scaled to width x height at a camera's frame rate, as H.264 (ffmpeg).

    Without ffmpeg, OpenCV writes MPEG-4 Part 2 instead (its wheels encode no H.264), which
    decodes faster than H.264: the decoding figures are then optimistic, and say so.
    """
    out = folder / f"camera_{width}x{height}_{fps}fps.mp4"
    if shutil.which("ffmpeg") is None:
        return _make_clip_with_opencv(out, width, height, fps, seconds)
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-i", str(sample_video()), "-t", str(seconds),
         "-vf", f"scale={width}:{height},fps={fps}", "-c:v", "libx264", "-preset", "veryfast",
         "-g", str(2 * fps), "-pix_fmt", "yuv420p", "-an", str(out)],
        check=True,
    )  # fmt: skip
    return out


def _make_clip_with_opencv(out: Path, width: int, height: int, fps: int, seconds: int) -> Path:
    print("ffmpeg not found: the clip is MPEG-4 Part 2 (OpenCV), not H.264", flush=True)
    source = cv2.VideoCapture(str(sample_video()))
    source_fps = source.get(cv2.CAP_PROP_FPS) or 10.0
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    image = None
    for index in range(int(seconds * fps)):
        wanted = int(index * source_fps / fps)  # repeat source frames, as ffmpeg's fps filter
        while source.get(cv2.CAP_PROP_POS_FRAMES) <= wanted:
            ok, frame = source.read()
            if not ok:
                break
            image = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        if image is not None:
            writer.write(image)
    writer.release()
    source.release()
    return out


def clip_size(clip: Path) -> tuple[int, int]:
    """(width, height) of a clip made by :func:`make_clip`, from its name."""
    width, height = (int(v) for v in clip.stem.split("_")[1].split("x"))
    return width, height


def measure(
    cameras: int,
    clip: Path,
    fps: float,
    warmup_s: float,
    seconds: float,
    setup: str = "bare",
    substream: Path | None = None,
    estimator: dict | None = None,
) -> dict:
    """Run ``cameras`` cameras (analysing ``substream`` when given, with the config's
    ``estimator`` section when given: the GPU's ``device`` and ``max_batch``); measure rates,
    skips, CPU, memory, latencies and model batch sizes after a warm-up."""
    width, height = clip_size(clip)
    make_camera = deployed_camera if setup == "deployed" else bare_camera
    with tempfile.TemporaryDirectory() as folder:
        cameras_config = [
            make_camera(f"cam{i:02d}", clip, width=width, height=height, substream=substream)
            for i in range(cameras)
        ]
        recording = None
        if setup == "deployed":
            recording = RecordingOptions(root=Path(folder) / "recordings", fps=fps)
        config = parse_config({"cameras": cameras_config, "estimator": estimator or {}})
        store = open_store(Path(folder) / "store.db")
        options = EngineOptions(worker=WorkerOptions(default_fps=fps, recording=recording))
        engine = Engine(config, store, options)
        engine.start()
        try:
            time.sleep(warmup_s)
            before = _snapshot(engine)
            time.sleep(seconds)
            after = _snapshot(engine)
            batch_sizes = list(getattr(_shared_model(engine), "batch_sizes", []))
        finally:
            engine.stop()
            store.close()
    elapsed = after["time"] - before["time"]
    rates = {
        name: (after["analysed"][name] - before["analysed"][name]) / elapsed
        for name in after["analysed"]
    }
    skipped = {name: after["skipped"][name] - before["skipped"][name] for name in after["skipped"]}
    cores = (after["cpu"] - before["cpu"]) / elapsed
    return {
        "setup": setup,
        "cameras": cameras,
        "substream": "x".join(map(str, clip_size(substream))) if substream else None,
        "target_fps": fps,
        "min_fps": round(min(rates.values()), 3),
        "mean_fps": round(sum(rates.values()) / cameras, 3),
        "skipped_ticks": sum(skipped.values()),
        "cpu_cores": round(cores, 3),
        "cpu_cores_per_camera": round(cores / cameras, 3),
        "rss_mib": round(after["rss"] / 2**20, 1),
        "analysis_ms_mean": round(after["analysis_ms"], 1),
        "metrics_latency_p95_s": _p95(after["metrics_latency"]),
        "alert_latency_p95_s": _p95(after["alert_latency"]),
        "alerts_opened": len(after["alert_latency"]),
        "estimator": estimator or {},
        "mean_batch": round(float(np.mean(batch_sizes)), 2) if batch_sizes else 1.0,
        "load_average_1min": round(os.getloadavg()[0], 2),
        # Behind: a camera below 95% of its rate, or ticks skipped beyond 2% of all ticks.
        "holds": min(rates.values()) >= 0.95 * fps
        and sum(skipped.values()) <= 0.02 * fps * elapsed * cameras,
    }


def _shared_model(engine: Engine):
    """The one model the engine's camera workers share."""
    worker = next(iter(engine.workers.values()), None)
    return getattr(worker, "estimator", None)


def _p95(values: list[float]) -> float | None:
    return round(float(np.percentile(values, 95)), 3) if values else None


def measure_in_fresh_process(
    cameras: int, clip: Path, args: argparse.Namespace, *, setup: str, substream: Path | None
) -> dict:
    """:func:`measure` in a new Python process, so that memory is not left over from the
    previous run."""
    code = (
        "import json, sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
        "from cameras_capacity import measure;"
        "print(json.dumps(measure(int(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4]),"
        " float(sys.argv[5]), float(sys.argv[6]), sys.argv[7],"
        " Path(sys.argv[8]) if sys.argv[8] else None, json.loads(sys.argv[9]))))"
    )
    folder = str(Path(__file__).resolve().parent)
    estimator = {"device": args.device, "max_batch": args.max_batch}
    if args.batch_wait_ms is not None:
        estimator["batch_wait_ms"] = args.batch_wait_ms
    if args.sparse_gate:
        estimator["sparse_gate"] = {}
    values = [folder, cameras, clip, args.fps, args.warmup, args.seconds, setup, substream or "",
              json.dumps(estimator)]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", code, *map(str, values)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def _snapshot(engine: Engine) -> dict:
    workers = engine.workers.values()
    workers = list(workers)
    durations = [s for w in workers for s in w.stats.analysis_s]
    times = os.times()
    return {
        "time": time.monotonic(),
        "analysed": {w.name: w.stats.analysed for w in workers},
        "skipped": {w.name: w.stats.skipped for w in workers},
        "cpu": times.user + times.system,
        "rss": _rss_bytes(),
        "analysis_ms": 1000 * sum(durations) / max(len(durations), 1),
        "metrics_latency": [s for w in workers for s in w.stats.metrics_latency_s],
        "alert_latency": [s for w in workers for s in w.stats.alert_latency_s],
    }


def _rss_bytes() -> int:
    """This process's resident memory (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--setup", choices=["deployed", "bare", "both"], default="both")
    parser.add_argument("--max-cameras", type=int, default=12)
    parser.add_argument(
        "--cameras",
        type=int,
        nargs="+",
        help="camera counts to try (default "
        "1, 2, ... up to --max-cameras, stopping at the first that falls behind)",
    )
    parser.add_argument("--fps", type=float, default=2.0, help="analysis rate per camera")
    parser.add_argument("--stream-fps", type=int, default=25, help="the cameras' frame rate")
    parser.add_argument("--size", default="1280x720")
    parser.add_argument(
        "--substream",
        metavar="WxH",
        help="give every camera a substream of this size (e.g. 640x360) as its analysis_source",
    )
    parser.add_argument(
        "--device", choices=["cpu", "cuda"], default="cpu", help="the density model's device"
    )
    parser.add_argument(
        "--max-batch", type=int, default=1, help="cameras' frames per model call (GPU: 8)"
    )
    parser.add_argument("--batch-wait-ms", type=float, help="default: the config's (20 ms)")
    parser.add_argument(
        "--sparse-gate", action="store_true", help="the density model's sparse-scene gate on"
    )
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    counts = args.cameras or list(range(1, args.max_cameras + 1))
    setups = ["deployed", "bare"] if args.setup == "both" else [args.setup]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        clip = make_clip(Path(folder), width, height, args.stream_fps, seconds=30)
        substream = None
        if args.substream:
            sub_width, sub_height = (int(v) for v in args.substream.split("x"))
            substream = make_clip(Path(folder), sub_width, sub_height, args.stream_fps, 30)
        decoded = substream or clip
        decode_ms = decode_ms_per_frame(decoded)
        decode_cores = decode_ms * args.stream_fps / 1000
        analysed = f", its {args.substream} substream" if substream else ""
        print(
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
            f"{args.size}{analysed} at {args.stream_fps} fps, analysed at {args.fps} fps per "
            "camera"
        )
        print(
            f"decoding the {'substream' if substream else 'stream'} alone: {decode_ms:.1f} ms "
            f"per frame = {decode_cores:.2f} cores per "
            f"camera at {args.stream_fps} fps; decoding every frame caps the machine at "
            f"{(os.cpu_count() or 1) / decode_cores:.1f} cameras before any analysis"
        )
        for setup in setups:
            print(f"--- {setup}")
            print("cameras  min fps  mean fps  skipped  cores  cores/cam  RSS MiB  ms/frame  "
                  "metrics p95 s  alert p95 s  alerts  batch  load")  # fmt: skip
            for cameras in counts:
                row = measure_in_fresh_process(
                    cameras, clip, args, setup=setup, substream=substream
                )
                row["decode_ms_per_frame"] = round(decode_ms, 2)
                rows.append(row)
                alert = "-" if row["alert_latency_p95_s"] is None else row["alert_latency_p95_s"]
                print(f"{cameras:7d}  {row['min_fps']:7.2f}  {row['mean_fps']:8.2f}  "
                      f"{row['skipped_ticks']:7d}  {row['cpu_cores']:5.2f}  "
                      f"{row['cpu_cores_per_camera']:9.3f}  {row['rss_mib']:7.0f}  "
                      f"{row['analysis_ms_mean']:8.0f}  {row['metrics_latency_p95_s']!s:>13}  "
                      f"{alert!s:>11}  {row['alerts_opened']:6d}  {row['mean_batch']:5.2f}  "
                      f"{row['load_average_1min']:4.1f}"
                      f"{'' if row['holds'] else '  <- falls behind'}", flush=True)  # fmt: skip
                if not row["holds"] and not args.cameras:
                    break
            held = [r["cameras"] for r in rows if r["holds"] and r["setup"] == setup]
            print(f"{setup}: holds {max(held, default=0)} camera(s) at {args.fps} fps "
                  "without falling behind")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
