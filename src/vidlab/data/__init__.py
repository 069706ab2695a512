"""Datasets and preprocessing: entries → clips, the one path every clip a model sees takes.

Manifests, cleaning, splits and the built-in dataset (`manifest`, `clean`, `split`, `synth`,
`commands`); which frames make a clip (`samplers`); how they are decoded and turned into tensors
(`clips`, `transforms`); the training DataLoader (`loader`); and the statistics monitoring
compares against (`stats`). See docs/architecture.md.
"""
