"""Datasets and preprocessing: manifests, cleaning, splits, samplers, transforms, loaders."""
