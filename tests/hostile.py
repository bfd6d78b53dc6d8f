"""Helpers for the hardening tests: the CLI run in-process, hostile files made on the fly."""

from __future__ import annotations

import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from crowdwatch.cli import main


@dataclass
class Outcome:
    """How one in-process command line ended."""

    code: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in (self.out + self.err).splitlines() if line.startswith("error:")]

    @property
    def clean(self) -> bool:
        """Exit 0 without an error line, or exit 2 with exactly one; never a traceback."""
        text = self.out + self.err
        if "Traceback" in text:
            return False
        if self.code == 0:
            return not self.error_lines
        return self.code == 2 and len(self.error_lines) == 1


def run_cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> Outcome:
    """``crowdwatch ARGS`` in this process (``cli.main``), its exit code and its output."""
    capsys.readouterr()
    try:
        main([str(arg) for arg in args])
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def png_declaring(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header declares ``width`` x ``height`` pixels (its data is a stub)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path


def clip_excerpt(clip: Path, out: Path, seconds: float = 20.0) -> Path:
    """The first seconds of ``clip`` with its index in front (so a truncated copy opens)."""
    try:
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-y", "-i", str(clip), "-t", str(seconds),
             "-c", "copy", "-movflags", "+faststart", str(out)],
            check=True, timeout=60,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        pytest.skip("ffmpeg is needed to cut the clip")
    return out
