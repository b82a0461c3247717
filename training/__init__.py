"""Training recipes: one config per experiment in `configs/`, run with `python -m training.run`."""
