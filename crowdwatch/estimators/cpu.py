"""Whether this CPU runs onnxruntime's int8 convolutions exactly (it decides which model runs).

On x86 CPUs without VNNI (AVX2 or AVX-512 alone: Zen 2 / Zen 3 EPYCs, Intel before Cascade
Lake), onnxruntime multiplies unsigned 8-bit activations by signed 8-bit weights with
``VPMADDUBSW``, which adds each pair of products into a *saturating* 16-bit sum: two large
activations under two large weights of one sign clip at 32,767 (``255 x 127 x 2 = 64,770``
fits only in 17 bits). The quantised density model then counts differently from the same file
on a VNNI CPU (``VPDPBUSD``, exact 32-bit sums) or on ARM64 (``SDOT``/``UDOT``, exact): on an
AVX2-only AMD EPYC on 2026-12-03 its validation MAE read ShanghaiTech B 12.92 against 9.53 on
VNNI and 9.54 for the float model, ShanghaiTech A 86.3 against 70.8 / 70.6
(``benchmarks/density_accuracy.py --model models/crowd_density_int8.onnx``); with onnxruntime's
graph optimisations off (no int8 kernels) the same file read B 9.55 there. A crowd-safety
count must not depend on the box it runs on, so the int8 model runs only where its sums are
exact and the float model everywhere else.
"""

from __future__ import annotations

import platform
from functools import lru_cache
from pathlib import Path

#: CPU flags (as /proc/cpuinfo or py-cpuinfo spell them) of instructions that sum u8 x s8
#: products in 32 bits.
EXACT_INT8_FLAGS = frozenset({"avx512_vnni", "avx512vnni", "avx_vnni", "avxvnni"})
#: Machines whose int8 dot products are exact by design.
EXACT_INT8_MACHINES = frozenset({"arm64", "aarch64"})


@lru_cache(maxsize=1)
def int8_is_exact() -> bool:
    """True where onnxruntime's u8 x s8 convolutions sum without saturating (see the module)."""
    if platform.machine().lower() in EXACT_INT8_MACHINES:
        return True
    return bool(cpu_flags() & EXACT_INT8_FLAGS)


def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags, lower case: /proc/cpuinfo on Linux (instant), py-cpuinfo
    elsewhere (about a second, once)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith(("flags", "Features")):
                return frozenset(line.split(":", 1)[1].lower().split())
    import cpuinfo as py_cpuinfo

    return frozenset(flag.lower() for flag in py_cpuinfo.get_cpu_info().get("flags", []))
