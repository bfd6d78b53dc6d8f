"""The fuzz corpus: mutated event configs, bad media files and bad command lines.

Deterministic (a fixed seed, from the sample config), so a failure names a file that can be
looked at. ``python tests/fuzz_corpus.py`` rewrites ``tests/fuzz/configs``; the test
(:mod:`test_fuzz`) runs every file of it, and the media and argument sets made here.
"""

from __future__ import annotations

import copy
import math
import random
import struct
import sys
import zlib
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CORPUS = HERE / "fuzz" / "configs"
SAMPLE = REPO / "sample_videos" / "pets2009_s2l1.yaml"
SEED = 12
CONFIGS = 320

WRONG_VALUES: list[Any] = [
    None, True, False, 0, -1, 1, 1e308, -1e308, 1e-320, 10**30, "", "x", "ゾーン\u202e", "a" * 5000,
    [], {}, [1], [[1, 2]], {"a": 1}, "nan", "-inf", [None, None], [[0, 0], [0, 0]], "\x00",
    "../../etc/passwd", "/dev/zero", "rtsp://127.0.0.1:1/x", "2" * 400,
]  # fmt: skip
NUMBERS: list[Any] = [math.nan, math.inf, -math.inf, 0, -0.0, -1, -1e9, 1e9, 1e200, 1e-12, 2**63]


def _nodes(value: Any, path: tuple = ()) -> list[tuple]:
    """Every path into a parsed YAML tree (mapping keys and list indices)."""
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _nodes(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _nodes(item, (*path, index))
    return found


def _get(tree: Any, path: tuple) -> Any:
    for part in path:
        tree = tree[part]
    return tree


def _set(tree: Any, path: tuple, value: Any) -> None:
    _get(tree, path[:-1])[path[-1]] = value


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _nested_text(depth: int) -> str:
    """A config whose estimator section nests ``depth`` lists deep (as YAML text: PyYAML's own
    dumper would recurse as deep)."""
    return "cameras: []\nestimator: " + "[" * depth + "]" * depth + "\n"


def mutate(base: dict, rng: random.Random) -> tuple[str, Any]:
    """One mutation of ``base``: a (description, data or YAML text) pair."""
    data = copy.deepcopy(base)
    paths = [path for path in _nodes(data) if path]
    path = rng.choice(paths)
    kind = rng.choice(
        ["wrong", "number", "delete", "unknown", "nest", "duplicate", "empty", "text", "many",
         "source"]
    )  # fmt: skip
    if kind == "wrong":
        _set(data, path, rng.choice(WRONG_VALUES))
    elif kind == "number":
        _set(data, path, rng.choice(NUMBERS))
    elif kind == "delete":
        container = _get(data, path[:-1])
        del container[path[-1]]
    elif kind == "unknown":
        container = _get(data, path[:-1])
        if isinstance(container, dict):
            container[rng.choice(["speling", "Zones", "polygon ", "ñ", "1"])] = 1
        else:
            container.append(rng.choice(WRONG_VALUES))
    elif kind == "nest":
        return f"nested at {path}", _nested_text(rng.choice([5, 40, 200, 1000, 5000]))
    elif kind == "source":
        choice = rng.choice([-1, 64, 10**6, "-1", "63", True, 3.5, "", "/dev/zero", "a.png"])
        data["cameras"][0]["source"] = choice
    elif kind == "duplicate":
        cameras = data.get("cameras") or []
        if cameras and isinstance(cameras, list) and isinstance(cameras[0], dict):
            zones = cameras[0].get("zones")
            if rng.random() < 0.5 and isinstance(zones, list) and zones:
                zones.append(copy.deepcopy(zones[0]))
            else:
                cameras.append(copy.deepcopy(cameras[0]))
    elif kind == "empty":
        _set(data, path, rng.choice([[], {}, "", None]))
    elif kind == "many":
        _set(data, path, [copy.deepcopy(_get(data, path))] * rng.choice([300, 3000]))
    else:  # damage the YAML text itself
        text = yaml.safe_dump(data, allow_unicode=True)
        cut = rng.randrange(len(text))
        damage = rng.choice(
            [text[:cut], text[:cut] + "\t\x00" + text[cut:], text[:cut] + ": [\n" + text[cut:],
             text + "\n!!python/object/apply:os.system ['true']\n", "&a [*a]",
             text.replace("  ", "\t", 3), "---\n" + text + "---\n" + text, "{" * 100]
        )  # fmt: skip
        return f"text damage at {cut}", damage
    return f"{kind} at {'.'.join(map(str, path))}", data


def configs() -> list[tuple[str, str]]:
    """(name, YAML text) for every mutated config of the corpus."""
    base = yaml.safe_load(SAMPLE.read_text())
    # Relative to tests/fuzz/configs, where the corpus is kept.
    base["cameras"][0]["source"] = "../../../sample_videos/pets2009_s2l1.mp4"
    rng = random.Random(SEED)
    corpus = []
    for index in range(CONFIGS):
        what, data = mutate(base, rng)
        text = data if isinstance(data, str) else _dump(data)
        corpus.append((f"{index:03d}", f"# {what}\n{text}"))
    return corpus


def _dump(data: Any) -> str:
    try:
        return yaml.safe_dump(data, allow_unicode=True, width=10**6)
    except (yaml.YAMLError, RecursionError, ValueError):
        return repr(data)


def png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def media(folder: Path) -> list[Path | str]:
    """Bad media sources made in ``folder`` (files, folders, URLs, devices)."""
    folder.mkdir(parents=True, exist_ok=True)
    clip = (REPO / "sample_videos" / "pets2009_s2l1.mp4").read_bytes()
    rng = random.Random(SEED)
    files: dict[str, bytes] = {
        "empty.mp4": b"",
        "zeros.mp4": b"\0" * 4096,
        "text.avi": b"this is not a video\n" * 50,
        "random.mkv": bytes(rng.randrange(256) for _ in range(20000)),
        "head.mp4": clip[:1000],
        "half-index.mp4": clip[:40000],
        "png.mp4": png_declaring(64, 64),
        "bomb.png": png_declaring(20000, 20000),
        "zero.png": png_declaring(0, 0),
        "garbage.jpg": b"\xff\xd8\xff" + bytes(rng.randrange(256) for _ in range(500)),
        "flipped.mp4": bytes(b ^ 0xFF for b in clip[:50000]),
        "header-only.webp": b"RIFF\x00\x00\x00\x00WEBPVP8 ",
        "name with spaces ü.mp4": b"\x00\x01",
    }
    sources: list[Path | str] = []
    for name, data in files.items():
        path = folder / name
        path.write_bytes(data)
        sources.append(path)
    for name, content in {
        "bad-images": {"a.jpg": b"no", "b.png": b"no", "c.bmp": b""},
        "bomb-images": {"a.png": png_declaring(30000, 30000)},
        "empty-folder": {},
        "no-images": {"notes.txt": b"hello"},
    }.items():
        sub = folder / name
        sub.mkdir(exist_ok=True)
        for file, data in content.items():
            (sub / file).write_bytes(data)
        sources.append(sub)
    (folder / "dir.mp4").mkdir(exist_ok=True)
    sources += [
        folder / "dir.mp4",
        folder / "missing.mp4",
        "/dev/null",
        "/proc/self/status",
        "rtsp://127.0.0.1:1/none",
        "http://127.0.0.1:1/none.mjpg",
        "foo://bar",
        "63",
        "-1",
        "",
    ]
    return sources


def argument_sets(folder: Path) -> list[list[str]]:
    """Bad command lines (each one a list of arguments after ``crowdwatch``)."""
    video = str(REPO / "sample_videos" / "pets2009_s2l1.mp4")
    out = str(folder / "out")
    a_file = folder / "a-file"
    a_file.write_text("x")
    config = str(SAMPLE)
    return [
        ["analyze", video, "--every", "0", "--out", out],
        ["analyze", video, "--every", "-5", "--out", out],
        ["analyze", video, "--fps", "0", "--out", out],
        ["analyze", video, "--fps", "nan", "--out", out],
        ["analyze", video, "--fps", "inf", "--out", out],
        ["analyze", video, "--max-frames", "0", "--out", out],
        ["analyze", video, "--max-frames", "-1", "--out", out],
        ["analyze", video, "--max-frames", "1e3", "--out", out],
        ["analyze", video, "--camera", "nope", "-c", config, "--out", out],
        ["analyze", video, "--estimator", "bogus", "--out", out],
        ["analyze", video, "--config", str(folder / "missing.yaml"), "--out", out],
        ["analyze", video, "--config", str(folder), "--out", out],
        ["analyze", video, "--out", str(a_file)],
        ["analyze", video, "--out", "/proc/crowdwatch"],
        ["analyze", video, "--record", str(folder / "rec"), "--out", out],
        ["analyze", video, "--store", "foo://bar", "--out", out],
        ["analyze", "--out", out],
        ["analyze", video, "--bogus"],
        ["count", str(folder / "missing.png")],
        ["count", str(folder / "a-file")],
        ["config", "check"],
        ["config", "check", str(folder / "missing.yaml")],
        ["status", "--store", str(folder)],
        ["status", "--store", "postgresql://u:p@127.0.0.1:1/x"],
        ["replay", "cam", "--start", "yesterday", "--store", str(folder / "r.db")],
        ["replay", "cam"],
        ["calibrate", str(folder / "missing.yaml")],
        ["user", "bob", "--role", "king", "--store", str(folder / "u.db")],
        ["console", "--port", "notaport"],
        ["run", str(folder / "missing.yaml"), "--store", str(folder / "e.db")],
        ["run", config, "--fps", "0"],
        ["nonsense-command"],
        ["eval", str(folder), "--dataset", "nope"],
    ]


def write_corpus(folder: Path = CORPUS) -> int:
    """Write the config corpus to ``folder`` (replacing it); returns how many files."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.yaml"):
        old.unlink()
    for name, text in configs():
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    return CONFIGS


if __name__ == "__main__":
    print(f"wrote {write_corpus(Path(sys.argv[1]) if len(sys.argv) > 1 else CORPUS)} configs")
