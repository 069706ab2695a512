"""The Fréchet distance between two Gaussians fitted to feature sets (the FID/FVD formula)."""

from __future__ import annotations

import warnings

import numpy as np


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of `N×D` features, in float64."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need an N×D feature array with N >= 2, got shape {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """`‖μa−μb‖² + Tr(Σa + Σb − 2(ΣaΣb)^½)` for feature sets `a` (N×D) and `b` (M×D)."""
    mu_a, cov_a = feature_stats(a)
    mu_b, cov_b = feature_stats(b)
    return frechet_from_stats(mu_a, cov_a, mu_b, cov_b)


def frechet_from_stats(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray,
                       cov_b: np.ndarray) -> float:
    """The distance from precomputed means and covariances (singular covariances are fine)."""
    from scipy import linalg

    cov_a, cov_b = np.atleast_2d(cov_a), np.atleast_2d(cov_b)
    diff = mu_a - mu_b
    with warnings.catch_warnings():  # N < D makes the product singular: expected, handled below
        warnings.simplefilter("ignore")
        covmean = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(covmean).all():
        # Nearly singular product: regularise slightly, as the reference FID code does.
        eps = np.eye(cov_a.shape[0]) * 1e-6
        covmean = linalg.sqrtm((cov_a + eps) @ (cov_b + eps))
    covmean = np.real(covmean)
    value = diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(covmean)
    return float(max(value, 0.0))
