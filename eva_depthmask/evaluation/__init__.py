"""Evaluation: the metric loop over a dataset, the difference baseline, the robustness sweep,
Predictor for new photos, and the seed projects' published figures.
"""
