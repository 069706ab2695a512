"""Training and model optimization: the Trainer, evaluation, bundles, resume, tuning, DDP."""
