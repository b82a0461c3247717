"""Input validation shared by the fusion models."""


def check_fusion_inputs(model, inputs):
    """Raises a `ValueError` naming both shapes when `hr_msi` is not `scale` x `lr_hsi`.

    Checked wherever the sizes are known (eager calls, and every traced call of `fit`,
    `predict` and `evaluate`, which see concrete shapes); unknown sizes are left to run.
    """
    if not isinstance(inputs, dict) or "lr_hsi" not in inputs or "hr_msi" not in inputs:
        return  # Keras reports missing or unnamed inputs itself
    lr, hr = tuple(inputs["lr_hsi"].shape), tuple(inputs["hr_msi"].shape)
    name = type(model).__name__
    for arg, shape in (("lr_hsi", lr), ("hr_msi", hr)):
        if len(shape) != 4:
            raise ValueError(
                f"{name}: `{arg}` must be a 4D (batch, height, width, bands) tensor. "
                f"Received: {arg} with shape {shape}"
            )
    s = model.scale
    for axis in (1, 2):
        known = isinstance(lr[axis], int) and isinstance(hr[axis], int)
        if known and hr[axis] != s * lr[axis]:
            raise ValueError(
                f"{name}: `hr_msi` must be exactly scale={s} times the height and width of "
                f"`lr_hsi`. Received: lr_hsi with shape {lr} and hr_msi with shape {hr} "
                f"(expected hr_msi of height x width {s * lr[1]} x {s * lr[2]})"
            )
