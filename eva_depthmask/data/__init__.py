"""Datasets: sources of samples, on-disk writing (datagen, chunks) and reading (dataset), the course
layouts, photo labelling by depth teachers, and validation.
"""
