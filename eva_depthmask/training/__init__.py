"""Training: fit(), its loaders and sampler, the sample cache, checkpoints, resume, the run log,
optimiser and schedule, numeric precision.
"""
