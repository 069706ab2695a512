"""The Fréchet distance formula against cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from vidlab.gen.frechet import frechet_distance, frechet_from_stats


def test_identical_sets_are_at_distance_zero():
    a = np.random.default_rng(0).normal(size=(200, 16))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_shifted_set_is_at_the_squared_shift():
    a = np.random.default_rng(1).normal(size=(300, 8))
    shift = np.arange(8) * 0.5
    assert frechet_distance(a, a + shift) == pytest.approx(float(shift @ shift), rel=1e-6)


def test_scaled_set_adds_the_trace_term():
    # b = 2a: Σb = 4Σa, (ΣaΣb)^½ = 2Σa, so the distance is Tr(Σa) + 4Tr(Σa) − 4Tr(Σa) = Tr(Σa).
    a = np.random.default_rng(2).normal(size=(400, 6)) * np.linspace(0.5, 2, 6)
    a -= a.mean(0)  # centred, so scaling leaves the mean at zero
    assert frechet_distance(a, 2 * a) == pytest.approx(np.trace(np.cov(a, rowvar=False)), rel=1e-5)


def test_gaussians_with_known_statistics():
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 2.0])
    c1, c2 = np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 1.0, 9.0])
    # diagonal: Σ (σ1 − σ2)² + ‖Δμ‖² = (1 + 1 + 0) + 9
    assert frechet_from_stats(mu1, c1, mu2, c2) == pytest.approx(11.0)


def test_singular_covariances_are_fine():
    a = np.random.default_rng(3).normal(size=(10, 32))  # N < D: rank-deficient covariance
    assert np.isfinite(frechet_distance(a, a + 1.0))


def test_too_few_samples_is_an_error():
    with pytest.raises(ValueError):
        frechet_distance(np.zeros((1, 4)), np.zeros((5, 4)))
