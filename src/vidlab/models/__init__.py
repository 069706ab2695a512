"""The model zoo: per-frame CNNs, CNN+RNN, 3D CNNs, X3D and a video transformer."""

from vidlab.models.base import VideoModel
from vidlab.models.registry import create, list_models, model_entry, register_model

__all__ = ["VideoModel", "create", "list_models", "model_entry", "register_model"]
