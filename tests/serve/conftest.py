"""Fixtures of the serve tests: bundles and predictors built once per session."""

from __future__ import annotations

import pytest
from tests.serve.helpers import make_colour_bundle, make_tiny_bundle


@pytest.fixture(scope="session")
def serve_root(tmp_path_factory):
    return tmp_path_factory.mktemp("serve")


@pytest.fixture(scope="session")
def colour_bundle(serve_root):
    return make_colour_bundle(serve_root / "colour.vidlab")


@pytest.fixture(scope="session")
def tiny_bundle(serve_root):
    return make_tiny_bundle(serve_root / "tiny.vidlab")


@pytest.fixture(scope="session")
def colour_predictor(colour_bundle):
    from vidlab.serve.predict import Predictor

    return Predictor(colour_bundle)


@pytest.fixture(scope="session")
def tiny_predictor(tiny_bundle):
    from vidlab.serve.predict import Predictor

    return Predictor(tiny_bundle, runtime="torch")


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread: on a shared 2-core machine, spinning OpenMP threads of the batcher
    and of preprocessing slow each other down many-fold (answers are the same either way)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

