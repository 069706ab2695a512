"""`python -m vidlab.accel.rss BUNDLE RUNTIME C,T,H,W BATCH [THREADS]`: peak RSS of one variant.

Run in a fresh process by `measure.peak_rss_mb`; prints `{"peak_rss_mb": ...}` as the last line.
"""

from __future__ import annotations

import json
import resource
import sys

import numpy as np


def main(argv: list[str]) -> None:
    bundle_path, runtime, shape, batch = argv[0], argv[1], argv[2], int(argv[3])
    threads = int(argv[4]) if len(argv) > 4 and int(argv[4]) > 0 else None
    from vidlab.bundle import load_bundle
    from vidlab.runtime import load_runner

    runner = load_runner(load_bundle(bundle_path), runtime, device="cpu", threads=threads)
    dims = tuple(int(d) for d in shape.split(","))
    x = np.zeros((batch, *dims), np.float32)
    for _ in range(2):
        runner(x[:1])
        runner(x)
    print(json.dumps({"peak_rss_mb": _peak_rss_mb()}))


def _peak_rss_mb() -> float:
    """VmHWM of this process image; ru_maxrss would carry the parent's peak over fork+exec."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


if __name__ == "__main__":
    main(sys.argv[1:])
