"""The recipes (one config per experiment in `configs/`) and their thin command line
(`python -m training.run`); the training library itself is `keras_hsifusion.training`."""
