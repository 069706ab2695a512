"""vidlab: from a folder of real videos to a deployed, accelerated, monitored video model."""

__version__ = "0.1.0"


def versions() -> dict[str, str]:
    """Versions of vidlab and the libraries that shape its results (saved in runs and bundles)."""
    import importlib.metadata as md

    out = {"vidlab": __version__}
    for dist in ("torch", "av", "onnxruntime", "onnx", "numpy"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = "absent"
    return out
