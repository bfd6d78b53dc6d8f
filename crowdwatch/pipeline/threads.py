"""OpenCV's own thread pool during analysis: one thread, so the density model gets the cores.

A frame's OpenCV work (optical flow, blurs, remaps, resizes, colour maps) is a few milliseconds
of small images, while the model runs beside it (analyze's look-ahead thread, the live engine's
other cameras) on onnxruntime's threads. Letting OpenCV split each small call over every core
makes its pool fight those threads for the same cores. ``benchmarks/opencv_threads.py`` on this
2-core machine (PETS frames, analyze's look-ahead), 2026-12-02: on a quiet machine 0.97x
(calibrated) and 1.05x (uncalibrated) the frames/s of OpenCV's default; with the machine's other
load high, 1.16x and 1.07x (README, "Speed"). The live engine runs with its cores full, which is
where it counts.
``CROWDWATCH_OPENCV_THREADS`` overrides the count (0: OpenCV's own default).
"""

from __future__ import annotations

import logging
import os

import cv2

log = logging.getLogger(__name__)

#: OpenCV threads while crowdwatch analyses (see the module docstring).
OPENCV_THREADS = 1


def limit_opencv_threads() -> int:
    """Set OpenCV's thread count for this process (``CROWDWATCH_OPENCV_THREADS`` or
    :data:`OPENCV_THREADS`) and return it; called where an analysis starts (``analyze``, the
    live engine, a camera host)."""
    value = os.environ.get("CROWDWATCH_OPENCV_THREADS", "").strip()
    threads = OPENCV_THREADS
    if value:
        try:
            threads = int(value)
        except ValueError:
            log.warning("CROWDWATCH_OPENCV_THREADS=%r is not a whole number: using %d", value,
                        OPENCV_THREADS)  # fmt: skip
    if threads <= 0:
        threads = -1  # OpenCV's default: as many as it finds cores
    cv2.setNumThreads(threads)
    return cv2.getNumThreads()
