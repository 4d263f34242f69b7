"""Networks: reusable layers, input fusion, encoders, DepthMaskNet, the seed projects' baselines,
the registry that builds any of them by name, test-time augmentation and summaries.
"""
