"""Training patches and held-out regions simulated from reference scenes read from disk.

`LazyFusionPatches` is `FusionPatches(degradations=...)` for scenes that stay on disk
(`keras_hsifusion.data.open_scenes`): every patch reads its HR window plus the margin of the
widest PSF (reflected at its region's border, so nothing outside the region is seen),
divides it by the collection's normaliser and simulates its (LR-HSI, HR-MSI) pair under a
condition drawn from a `DegradationSampler` (`keras_hsifusion.data.response_sampler` builds
it from a data config). Memory holds a batch, not the scenes. `split_scenes` cuts a
collection into training, validation and test regions; `simulate_regions` simulates whole
held-out regions the same way as the patches.

One cohesive module (the patch dataset, the split and the held-out simulation share the
window reader, the normaliser and the condition sampler), hence over 450 lines.
"""

import math

import numpy as np

from keras_hsifusion.data.degrade import add_noise, psf_radius, spatial_degrade
from keras_hsifusion.data.patches import PatchBatches, augment_arrays, spatial_split
from keras_hsifusion.data.scene_files import region_statistics

__all__ = ["LazyFusionPatches", "simulate_regions", "split_scenes"]


def _margin(scale, fwhm):
    return -(-psf_radius(scale, fwhm) // scale) * scale


def _window(scene, bounds, y0, y1, x0, x1):
    """Rows y0:y1, columns x0:x1 of a scene, reflected (half-sample) outside `bounds`."""
    (r0, r1), (c0, c1) = bounds
    a, b, c, d = max(y0, r0), min(y1, r1), max(x0, c0), min(x1, c1)
    block = scene.read((a, b), (c, d))
    pad = ((a - y0, y1 - b), (c - x0, x1 - d), (0, 0))
    return np.pad(block, pad, mode="symmetric") if any(p != (0, 0) for p in pad) else block


def _simulate(window, margin, scale, cond, sampler, keep, rng, power=None, gram=None):
    """`(lr, msi, hr)` of the inner part of an HR window (margin on every side)."""
    m, s = margin, scale
    h, w = window.shape[0] - 2 * m, window.shape[1] - 2 * m
    hr = window[m : m + h, m : m + w]
    lr = spatial_degrade(window[..., keep], s, cond["psf_fwhm"])
    lr = lr[m // s : (m + h) // s, m // s : (m + w) // s]
    srf = sampler.srf(cond)
    msi = (hr.astype(np.float64) @ srf).astype(np.float32)
    snr_lr, snr_msi = sampler.noise_snr_db(cond)
    if snr_lr is not None:
        snr_lr = np.broadcast_to(snr_lr, hr.shape[-1:])[keep]
        lr = add_noise(lr, snr_lr, rng, power=None if power is None else power[keep])
    if snr_msi is not None:
        msi_power = None if gram is None else np.einsum("cj,cd,dj->j", srf, gram, srf)
        msi = add_noise(msi, snr_msi, rng, power=msi_power)
    return lr, msi, np.ascontiguousarray(hr[..., keep])


def _bounds(scene, region, scale):
    h, w = scene.shape[:2]
    rows, cols = region if region is not None else (slice(0, h), slice(0, w))
    r0, r1, _ = rows.indices(h)
    c0, c1, _ = cols.indices(w)
    r0, c0 = -(-r0 // scale) * scale, -(-c0 // scale) * scale
    return (r0, r0 + (r1 - r0) // scale * scale), (c0, c0 + (c1 - c0) // scale * scale)


class LazyFusionPatches(PatchBatches):
    """Random (LR-HSI, HR-MSI, HR-HSI) patches simulated one by one from scenes on disk.

    Each item is `({"lr_hsi": (B, p/s, p/s, C'), "hr_msi": (B, p, p, c)}, hr_hsi (B, p, p, C'))`
    as `FusionPatches`. A patch lies in one scene's region, the scene drawn with a
    probability proportional to its number of patch positions; its HR window and the margin
    of the widest PSF are read from disk (`Scene.read`; the margin is reflected at the
    region's border, so no pixel outside the regions reaches a batch), divided by `divisor`,
    and simulated under a condition drawn from `degradations` (a fixed sampler gives the
    same condition every time). Noise levels are relative to each region's mean square per
    band (`statistics`). Random flips and rot90 as `FusionPatches`.

    Args:
        scenes: a list of `Scene`s (or a `SceneCollection`).
        scale: integer resolution ratio.
        degradations: a `DegradationSampler` (e.g. `response_sampler`).
        regions: optional list, one `(row_slice, col_slice)` HR box per scene (default: whole
            scenes); starts are rounded up and sizes down to multiples of `scale`.
        divisor: the patches are divided by it (the collection's normaliser). Defaults to 1.
        patch_size: HR patch side, a multiple of `scale`. Defaults to 32.
        batch_size: defaults to 8.
        patches_per_epoch: defaults to 64.
        augment: random flips and rot90. Defaults to True.
        hsi_bands: the HSI bands (a slice or index array) of the LR-HSI and target; the HR-MSI
            sees all bands. Defaults to all.
        statistics: optional list of `region_statistics` per scene (raw units), for the noise
            levels; computed (one pass over the regions) when noise is drawn and not given.
        seed: seed of positions, conditions, noise and augmentation.
        **kwargs: `workers`, `use_multiprocessing`, `max_queue_size` of `PyDataset`.

    Examples:
    >>> from keras_hsifusion.data import open_scenes, response_sampler
    >>> scenes = open_scenes([np.random.rand(40, 40, 6)], wavelengths=np.linspace(450, 900, 6))
    >>> sampler = response_sampler({"srf": np.eye(6)[:, :3].tolist()}, 4, None, 6)
    >>> ds = LazyFusionPatches(scenes, 4, sampler, patch_size=16, batch_size=2, seed=0)
    >>> inputs, target = ds[0]
    >>> inputs["lr_hsi"].shape, inputs["hr_msi"].shape, target.shape
    ((2, 4, 4, 6), (2, 16, 16, 3), (2, 16, 16, 6))
    """

    def __init__(
        self,
        scenes,
        scale,
        degradations,
        regions=None,
        divisor=1.0,
        patch_size=32,
        batch_size=8,
        patches_per_epoch=64,
        augment=True,
        hsi_bands=None,
        statistics=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ValueError(f"`scale` must be a positive integer. Received: scale={scale}")
        if patch_size <= 0 or patch_size % scale:
            raise ValueError(
                f"`patch_size` must be a positive multiple of `scale` ({scale}). "
                f"Received: patch_size={patch_size}"
            )
        if batch_size < 1 or not patches_per_epoch or patches_per_epoch < 1:
            raise ValueError(
                "`batch_size` and `patches_per_epoch` must be >= 1. Received: "
                f"batch_size={batch_size}, patches_per_epoch={patches_per_epoch}"
            )
        if not float(divisor) > 0:
            raise ValueError(f"`divisor` must be positive. Received: divisor={divisor}")
        self.scenes = list(scenes)
        regions = [None] * len(self.scenes) if regions is None else list(regions)
        if len(regions) != len(self.scenes):
            raise ValueError(
                f"`regions` needs one box per scene ({len(self.scenes)}). Received {len(regions)}"
            )
        self.scale, self.patch_size, self.batch_size = scale, patch_size, batch_size
        self.patches_per_epoch, self.augment, self.seed = patches_per_epoch, augment, seed
        self.degradations, self.divisor = degradations, float(divisor)
        self.hsi_bands = slice(None) if hsi_bands is None else hsi_bands
        self.margin = _margin(scale, degradations.max_psf_fwhm)
        self.bounds = [_bounds(s, r, scale) for s, r in zip(self.scenes, regions)]
        counts = [
            max(0, (r1 - r0 - patch_size) // scale + 1)
            * max(0, (c1 - c0 - patch_size) // scale + 1)
            for (r0, r1), (c0, c1) in self.bounds
        ]
        if not sum(counts):
            raise ValueError(
                f"No {patch_size}x{patch_size} patch fits in the scenes/regions. Received: "
                f"{[(s.name, b) for s, b in zip(self.scenes, self.bounds)]}"
            )
        self.weights = np.asarray(counts, np.float64) / sum(counts)
        self.power = self.gram = [None] * len(self.scenes)
        noisy = degradations.snr_lr is not None or degradations.snr_msi is not None
        if noisy:
            if statistics is None:
                statistics = [
                    region_statistics(s, (slice(*r), slice(*c)), gram=True)
                    for s, (r, c) in zip(self.scenes, self.bounds)
                ]
            d2 = self.divisor**2
            self.power = [st["power"] / d2 for st in statistics]
            self.gram = [None if st["gram"] is None else st["gram"] / d2 for st in statistics]
        self.epoch = 0

    def __len__(self):
        return math.ceil(self.patches_per_epoch / self.batch_size)

    def _rng(self, index):
        if self.seed is None:
            return np.random.default_rng()
        return np.random.default_rng([self.seed, self.epoch, index, 2])

    def patch(self, i, y, x, rng):
        """The `(lr, msi, hr)` patch of scene `i` at HR `(y, x)` under a drawn condition."""
        p, m = self.patch_size, self.margin
        window = _window(self.scenes[i], self.bounds[i], y - m, y + p + m, x - m, x + p + m)
        window = window / np.float32(self.divisor)
        cond = self.degradations.draw(rng)
        return _simulate(
            window, m, self.scale, cond, self.degradations, self.hsi_bands, rng,
            self.power[i], self.gram[i],
        )  # fmt: skip

    def __getitem__(self, index):
        if index < 0 or index >= len(self):
            raise IndexError(f"Batch index out of range. Received: index={index}, len={len(self)}")
        rng, s, p = self._rng(index), self.scale, self.patch_size
        count = min(self.batch_size, self.patches_per_epoch - index * self.batch_size)
        out = [], [], []
        for _ in range(count):
            i = int(rng.choice(len(self.scenes), p=self.weights))
            (r0, r1), (c0, c1) = self.bounds[i]
            y = r0 + s * int(rng.integers((r1 - r0 - p) // s + 1))
            x = c0 + s * int(rng.integers((c1 - c0 - p) // s + 1))
            arrays = self.patch(i, y, x, rng)
            if self.augment:
                arrays = augment_arrays(arrays, rng)
            for dst, a in zip(out, arrays):
                dst.append(a)
        return {"lr_hsi": np.stack(out[0]), "hr_msi": np.stack(out[1])}, np.stack(out[2])


def simulate_regions(
    scenes, regions, scale, sampler, conditions, divisor=1.0, hsi_bands=None, join="batch", seed=0
):
    """Whole held-out regions simulated under each of `conditions` (validation, test).

    Each region is read with the margin of the widest PSF from its scene (reflected at the
    scene's border only, as `degrade` simulates a whole scene), divided by `divisor` and
    simulated; noise levels are relative to each simulated image's own mean square.

    Args:
        scenes: `Scene`s (or a `SceneCollection`).
        regions: `[(scene_index, (row_slice, col_slice))]`.
        scale: integer resolution ratio.
        sampler: the `DegradationSampler` (its `srf` and noise levels).
        conditions: a list of conditions (`DegradationSampler.draw`, `nominal_condition`).
        divisor: normaliser of the collection.
        hsi_bands: the HSI bands kept in the LR-HSI and target (slice or indices).
        join: `0` / `1`: the regions are concatenated along rows / columns into one image
            per condition (strips of several scenes, same width / height); `"batch"`: each
            region is one image, all cropped (top-left) to the smallest height and width.
        seed: seed of the noise (with the condition and region indices).

    Returns:
        `({"lr_hsi": (B, h, w, C'), "hr_msi": (B, H, W, c)}, target (B, H, W, C'))`, B the
        number of conditions (joined) or conditions x regions (`"batch"`).
    """
    keep = slice(None) if hsi_bands is None else hsi_bands
    m = _margin(scale, sampler.max_psf_fwhm)
    windows = []
    for i, region in regions:
        scene = scenes[i]
        (r0, r1), (c0, c1) = _bounds(scene, region, scale)
        whole = _bounds(scene, None, scale)
        window = _window(scene, whole, r0 - m, r1 + m, c0 - m, c1 + m)
        windows.append(window / np.float32(divisor))
    if join == "batch":  # sizes are multiples of `scale`, so is the smallest
        rows, cols = min(w.shape[0] for w in windows), min(w.shape[1] for w in windows)
        windows = [w[:rows, :cols] for w in windows]
    lrs, msis, hrs = [], [], []
    for k, cond in enumerate(conditions):
        parts = []
        for j, window in enumerate(windows):
            rng = np.random.default_rng([*np.atleast_1d(seed).tolist(), k, j])
            parts.append(_simulate(window, m, scale, cond, sampler, keep, rng))
        if join == "batch":
            for lr, msi, hr in parts:
                lrs.append(lr), msis.append(msi), hrs.append(hr)
        else:
            lrs.append(np.concatenate([p[0] for p in parts], axis=join))
            msis.append(np.concatenate([p[1] for p in parts], axis=join))
            hrs.append(np.concatenate([p[2] for p in parts], axis=join))
    return {"lr_hsi": np.stack(lrs), "hr_msi": np.stack(msis)}, np.stack(hrs)


def split_scenes(
    scenes,
    split="region",
    scale=4,
    crop=None,
    test_size=48,
    val_size=24,
    val_axis=1,
    psf_fwhm=None,
    prefix="",
):
    """The training, validation and test regions of a scene collection.

    Args:
        scenes: a `SceneCollection`.
        split: `"region"`: in every scene, the rightmost `test_size` HR columns are the test
            region and the last `val_size` columns (`val_axis=1`; 0: rows) of the rest the
            validation strip, with `spatial_split`'s guard bands; or
            `{"train": [...], "val": [...], "test": [...]}`: whole scenes by name or path
            (`SceneCollection.split`).
        scale: integer resolution ratio.
        crop: optional HR side: every scene is cut to its top-left `crop` x `crop` square.
        test_size, val_size, val_axis: the region split's sizes (HR pixels) and strip axis.
        psf_fwhm: the widest PSF FWHM simulated (guard bands). Defaults to `scale`.
        prefix: prefix of argument names in error messages (`"data."` for a config).

    Returns:
        `(parts, joins)`: `parts` maps `"train"`, `"val"`, `"test"` to
        `[(scene_index, (row_slice, col_slice))]`; `joins` maps `"val"` and `"test"` to the
        `join` of `simulate_regions` (region split: the strips of all scenes joined along
        their long side; scene split: `"batch"`).
    """
    sizes = []
    for scene in scenes:
        h, w = scene.shape[:2]
        if crop is not None and crop > min(h, w):
            raise ValueError(
                f"`{prefix}crop` must be at most {min(h, w)} for scene {scene.name!r}. "
                f"Received: crop={crop}"
            )
        sizes.append((h, w) if crop is None else (crop, crop))
    if split != "region":
        lists = scenes.split(split, f"{prefix}split")
        parts = {
            k: [(i, (slice(0, sizes[i][0]), slice(0, sizes[i][1]))) for i in v]
            for k, v in lists.items()
        }
        return parts, {"val": "batch", "test": "batch"}
    parts = {"train": [], "val": [], "test": []}
    for i, (h, w) in enumerate(sizes):
        try:
            train, test = spatial_split(h, w, scale, test_size, psf_fwhm=psf_fwhm)
            rows, cols = train
            train, val = spatial_split(
                rows.stop, cols.stop, scale, val_size, axis=val_axis, psf_fwhm=psf_fwhm
            )
        except ValueError as e:
            name = scenes[i].name
            raise ValueError(f"`{prefix}split`='region' in scene {name!r}: {e}") from e
        for key, region in (("train", train), ("val", val), ("test", test)):
            parts[key].append((i, region))
    return parts, {"val": 1 - val_axis, "test": 0}
