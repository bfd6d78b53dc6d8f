"""How many cameras one machine holds live: N cameras at 2 analysed frames per second each.

Every camera plays a 1280x720 H.264 copy of the bundled PETS clip at a camera's frame rate
(25 fps by default, decoded in full like a real stream) through the live engine with the default
model, into a SQLite store. For N = 1, 2, ... it measures each camera's achieved analysis rate
and the analysis ticks it had to skip; a camera "falls behind" when it reaches less than 95% of
its rate or skips more than 2% of its ticks. Also prints the process's CPU (in cores) and
memory per camera.

    python benchmarks/cameras_capacity.py                     # up to 8 cameras, 30 s each
    python benchmarks/cameras_capacity.py --max-cameras 4 --seconds 20 --json out.json

The machine's other load shows in the load average printed with each row: on a shared machine
the count is a lower bound.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from crowdwatch.config import parse_config
from crowdwatch.engine import Engine, EngineOptions, WorkerOptions
from crowdwatch.paths import sample_video
from crowdwatch.store import open_store


def make_clip(folder: Path, width: int, height: int, fps: int, seconds: int) -> Path:
    """The sample clip scaled to width x height at a camera's frame rate, as H.264."""
    out = folder / f"camera_{width}x{height}_{fps}fps.mp4"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-i", str(sample_video()), "-t", str(seconds),
         "-vf", f"scale={width}:{height},fps={fps}", "-c:v", "libx264", "-preset", "veryfast",
         "-g", str(2 * fps), "-pix_fmt", "yuv420p", "-an", str(out)],
        check=True,
    )  # fmt: skip
    return out


def measure(cameras: int, clip: Path, fps: float, warmup_s: float, seconds: float) -> dict:
    """Run ``cameras`` cameras; measure rates, skips, CPU and memory after a warm-up."""
    config = parse_config(
        {"cameras": [{"name": f"cam{i:02d}", "source": str(clip)} for i in range(cameras)]}
    )
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(Path(folder) / "store.db")
        engine = Engine(config, store, EngineOptions(worker=WorkerOptions(default_fps=fps)))
        engine.start()
        try:
            time.sleep(warmup_s)
            before = _snapshot(engine)
            time.sleep(seconds)
            after = _snapshot(engine)
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
        "cameras": cameras,
        "target_fps": fps,
        "min_fps": round(min(rates.values()), 3),
        "mean_fps": round(sum(rates.values()) / cameras, 3),
        "skipped_ticks": sum(skipped.values()),
        "cpu_cores": round(cores, 3),
        "cpu_cores_per_camera": round(cores / cameras, 3),
        "rss_mib": round(after["rss"] / 2**20, 1),
        "analysis_ms_mean": round(after["analysis_ms"], 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
        # Behind: a camera below 95% of its rate, or ticks skipped beyond 2% of all ticks.
        "holds": min(rates.values()) >= 0.95 * fps
        and sum(skipped.values()) <= 0.02 * fps * elapsed * cameras,
    }


def measure_in_fresh_process(cameras: int, clip: Path, args: argparse.Namespace) -> dict:
    """:func:`measure` in a new Python process, so that memory is not left over from the
    previous run."""
    code = (
        "import json, sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
        "from cameras_capacity import measure;"
        "print(json.dumps(measure(int(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4]),"
        " float(sys.argv[5]), float(sys.argv[6]))))"
    )
    folder = str(Path(__file__).resolve().parent)
    values = [folder, cameras, clip, args.fps, args.warmup, args.seconds]
    done = subprocess.run(
        [sys.executable, "-c", code, *map(str, values)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def _snapshot(engine: Engine) -> dict:
    workers = engine.workers.values()
    durations = [s for w in workers for s in w.stats.analysis_s]
    times = os.times()
    return {
        "time": time.monotonic(),
        "analysed": {w.name: w.stats.analysed for w in workers},
        "skipped": {w.name: w.stats.skipped for w in workers},
        "cpu": times.user + times.system,
        "rss": _rss_bytes(),
        "analysis_ms": 1000 * sum(durations) / max(len(durations), 1),
    }


def _rss_bytes() -> int:
    """This process's resident memory (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-cameras", type=int, default=8)
    parser.add_argument("--fps", type=float, default=2.0, help="analysis rate per camera")
    parser.add_argument("--stream-fps", type=int, default=25, help="the cameras' frame rate")
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        clip = make_clip(Path(folder), width, height, args.stream_fps, seconds=30)
        print(
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
            f"{args.size} at {args.stream_fps} fps, analysed at {args.fps} fps per camera"
        )
        print("cameras  min fps  mean fps  skipped  cores  cores/cam  RSS MiB  ms/frame  load")
        for cameras in range(1, args.max_cameras + 1):
            row = measure_in_fresh_process(cameras, clip, args)
            rows.append(row)
            print(f"{cameras:7d}  {row['min_fps']:7.2f}  {row['mean_fps']:8.2f}  "
                  f"{row['skipped_ticks']:7d}  {row['cpu_cores']:5.2f}  "
                  f"{row['cpu_cores_per_camera']:9.3f}  {row['rss_mib']:7.0f}  "
                  f"{row['analysis_ms_mean']:8.0f}  {row['load_average_1min']:4.1f}"
                  f"{'' if row['holds'] else '  <- falls behind'}", flush=True)  # fmt: skip
            if not row["holds"]:
                break
    held = [row["cameras"] for row in rows if row["holds"]]
    print(f"holds {max(held, default=0)} camera(s) at {args.fps} fps without falling behind")
    if len(rows) >= 2:
        per_camera = (rows[-1]["rss_mib"] - rows[0]["rss_mib"]) / (rows[-1]["cameras"] - 1)
        print(f"memory per extra camera: about {per_camera:.0f} MiB "
              f"(one camera: {rows[0]['rss_mib']:.0f} MiB with the model)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
