"""`parallel_map`'s local engine starts its workers safely from a process that has already
run PyTorch on several threads (a notebook, a test session, `vidlab train` then `index`)."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("torch")

AFTER_TRAINING = textwrap.dedent("""
    import torch
    import torch.nn.functional as F

    from vidlab.data.parallel import parallel_map


    def resize(seed):
        x = torch.rand(8, 3, 120, 160, generator=torch.Generator().manual_seed(seed))
        return (torch.get_num_threads(),
                F.interpolate(x, size=(40, 52), mode="bilinear", antialias=True).shape[-1])


    if __name__ == "__main__":
        torch.set_num_threads(2)  # the parent runs OpenMP parallel regions first
        for _ in range(3):
            F.interpolate(torch.rand(16, 3, 240, 320), size=(60, 80), mode="bilinear",
                          antialias=True)
        print(sorted(set(parallel_map(resize, list(range(12)), workers=2, chunksize=1))))
""")


def test_workers_run_torch_after_the_parent_ran_openmp_regions(tmp_path):
    """Forked after a parallel region, a worker's first OpenMP region hangs for ever (GNU
    OpenMP); the pool's workers run PyTorch on one thread, so the map finishes."""
    script = tmp_path / "after_training.py"
    script.write_text(AFTER_TRAINING)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the hung workers too
        proc.communicate()
        pytest.fail("parallel_map's workers hung after the parent ran PyTorch threads")
    assert proc.returncode == 0, err
    assert out.strip() == "[(1, 52)]"
