"""A camera analysed on its 640x360 substream against its 1280x720 main stream, one run.

The bundled PETS 2009 clip is encoded as a 1280x720 "main stream" and a 640x360 substream (H.264
by ffmpeg, at the clip's true 7 frames/s). The sample config's camera (calibration, zones
``road`` and ``crossing``, the ``walkway`` line, drawn on the 768x576 original) is moved to the
main stream's pixels (``frame_size`` 1280x720) and ``crowdwatch.analyze`` runs three times with
the shipped density model: on the original clip, on the main stream, and on the substream
named as the camera's ``analysis_source``. It prints each zone's mean people, people/m² and
people-weighted walking speed (m/s, frames with people), the line's crossings and flow, and
analysis frames/s, then the substream's ratio to the main stream. (The "main stream" is the
768x576 clip scaled up, so it holds no detail the original lacks: the figures show what the
lower resolution costs, not what a real 720p camera gains.)

    python benchmarks/substream_counts.py [--frames 400]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from crowdwatch.config import parse_config
from crowdwatch.config.scaling import camera_for_frames
from crowdwatch.config.schema import CameraConfig
from crowdwatch.estimators import make_estimator
from crowdwatch.paths import sample_config, sample_video
from crowdwatch.pipeline import AnalysisOptions, analyze

SAMPLE_SIZE = (768, 576)
MAIN = (1280, 720)
SUB = (640, 360)
TRUE_FPS = 7


def encode(folder: Path, size: tuple[int, int], frames: int) -> Path:
    """The clip's first ``frames`` frames at ``size``, H.264 at the true frame rate."""
    out = folder / f"plaza_{size[0]}x{size[1]}.mp4"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-r", str(TRUE_FPS), "-i", str(sample_video()),
         "-frames:v", str(frames), "-vf", f"scale={size[0]}:{size[1]}", "-c:v", "libx264",
         "-preset", "veryfast", "-pix_fmt", "yuv420p", "-an", str(out)],
        check=True,
    )  # fmt: skip
    return out


def main_stream_camera(*, main: Path, sub: Path | None) -> dict:
    """The sample camera drawn on the main stream, analysing ``sub`` when given."""
    sample = dict(yaml.safe_load(sample_config().read_text())["cameras"][0])
    sample.update(source=str(main), frame_size=list(SAMPLE_SIZE), source_fps=TRUE_FPS)
    drawn = CameraConfig.model_validate(sample)
    camera = camera_for_frames(drawn, width=MAIN[0], height=MAIN[1]).model_dump(mode="json")
    if sub is not None:
        camera["analysis_source"] = str(sub)
    return camera


def run(name: str, camera: dict, frames: int, estimator) -> dict:
    """Analyse one variant; its zone means, line totals and frames/s."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run"
        options = AnalysisOptions(max_frames=frames, write_video=False, progress=False)
        started = time.perf_counter()
        analyze(None, parse_config({"cameras": [camera]}), out, options, estimator=estimator)
        seconds = time.perf_counter() - started
        zones = list(csv.DictReader((out / "metrics.csv").open()))
        lines = list(csv.DictReader((out / "lines.csv").open()))
    result = {"fps": frames / seconds, "zones": {}}
    for zone in sorted({row["zone"] for row in zones}):
        rows = [row for row in zones if row["zone"] == zone]
        speeds = [float(row["mean_speed"]) for row in rows if row["mean_speed"]]
        result["zones"][zone] = (
            float(np.mean([float(row["count"]) for row in rows])),
            float(np.mean([float(row["density"] or "nan") for row in rows])),
            float(np.mean(speeds)) if speeds else float("nan"),
        )
    last = lines[-1]
    flows = [float(row["flow_rate"] or 0) for row in lines]
    result["line"] = (float(last["crossed_in"]), float(last["crossed_out"]), max(flows))
    print(f"{name:22s} {result['fps']:5.1f} frames/s  "
          + "  ".join(f"{z} {c:.2f} people {d:.3f}/m² {v:.2f} m/s"
                      for z, (c, d, v) in result["zones"].items())
          + f"  walkway in/out {result['line'][0]:.1f}/{result['line'][1]:.1f}, "
          f"peak flow {result['line'][2]:.1f} /m/min", flush=True)  # fmt: skip
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=400)
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None:
        sys.exit("error: this benchmark needs ffmpeg (H.264 clips)")
    print(f"# substream_counts {time.strftime('%Y-%m-%d %H:%M')}, {args.frames} PETS frames")
    estimator = make_estimator()
    original = dict(yaml.safe_load(sample_config().read_text())["cameras"][0])
    original["source"] = str(sample_video())
    with tempfile.TemporaryDirectory() as folder:
        main_clip = encode(Path(folder), MAIN, args.frames)
        sub_clip = encode(Path(folder), SUB, args.frames)
        run("original 768x576", original, args.frames, estimator)
        main = run("main stream 1280x720", main_stream_camera(main=main_clip, sub=None),
                   args.frames, estimator)  # fmt: skip
        sub = run("substream 640x360", main_stream_camera(main=main_clip, sub=sub_clip),
                  args.frames, estimator)  # fmt: skip
    for zone, (count, _, speed) in main["zones"].items():
        ratio = sub["zones"][zone][0] / count if count else float("nan")
        print(f"substream / main stream, zone {zone}: people {ratio:.3f}, "
              f"speed {sub['zones'][zone][2] / speed:.3f}")  # fmt: skip
    print(f"substream / main stream, frames/s: {sub['fps'] / main['fps']:.2f}")


if __name__ == "__main__":
    main()
