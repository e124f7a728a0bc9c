"""Reading runs back: the run list, side-by-side comparison, evaluation grids and HParams."""
