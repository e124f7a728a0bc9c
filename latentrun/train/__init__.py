"""Training: the step loop, objectives, schedules, clipping, loss-explosion handling, precision and
data parallelism. Knows nothing of the command line or of run directories."""
