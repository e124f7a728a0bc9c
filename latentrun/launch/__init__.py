"""One run's life (start, resume) and several runs at once (parallel launches)."""
