"""Augmentation: the aligned quartet transform, background realism, normalisation."""
