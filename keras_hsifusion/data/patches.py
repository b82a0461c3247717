"""Patch datasets for `model.fit` and a leak-free spatial train/validation split."""

import math

import keras
import numpy as np

from keras_hsifusion.data.degrade import add_noise, degrade, psf_radius, spatial_degrade

__all__ = ["FusionPatches", "PatchBatches", "PatchesView", "augment_arrays", "spatial_split"]


def spatial_split(height, width, scale, val_size=48, axis=1, psf_fwhm=None, guard=None):
    """Splits one scene into a training and a held-out region with no shared pixels.

    The held-out region is the last `val_size` HR rows (`axis=0`) or columns (`axis=1`,
    default: the rightmost 48 columns of the protocol); the training region is the start of
    the scene, ending a guard band earlier. The guard is the narrowest (a multiple of `scale`)
    for which no HR pixel is seen by both regions, whether as a target or MSI pixel or inside
    the PSF support (see `degrade`) of one of their LR pixels: a scene simulated whole gives
    training inputs and targets that carry nothing of the held-out ones. All bounds are
    multiples of `scale`.

    Args:
        height: HR height of the scene.
        width: HR width of the scene.
        scale: integer resolution ratio.
        val_size: HR size of the held-out region along `axis`; rounded down to a multiple of
            `scale`. Defaults to 48.
        axis: 0 to split rows, 1 to split columns. Defaults to 1.
        psf_fwhm: PSF FWHM in HR pixels used for the simulation. Defaults to `scale`.
        guard: HR pixels between the regions. Defaults to the smallest multiple of `scale`
            that keeps the two footprints apart (pass 0 if you simulate each region on
            its own).

    Returns:
        `(train_region, val_region)`, each a `(row_slice, col_slice)` pair of HR indices,
        multiples of `scale`; LR indices are the same slices divided by `scale`.

    Examples:
    >>> train, val = spatial_split(144, 144, scale=4)
    >>> train, val
    ((slice(0, 144, None), slice(0, 88, None)), (slice(0, 144, None), slice(96, 144, None)))
    """
    if axis not in (0, 1):
        raise ValueError(f"`axis` must be 0 (rows) or 1 (columns). Received: axis={axis}")
    size = (height, width)[axis]
    full = (height // scale) * scale, (width // scale) * scale
    size = full[axis]
    val_size = (int(val_size) // scale) * scale
    if guard is None:
        guard = _min_guard(scale, psf_radius(scale, psf_fwhm))
    elif guard < 0 or guard % scale:
        raise ValueError(
            f"`guard` must be a non-negative multiple of `scale`. Received: guard={guard}"
        )
    val_start = size - val_size
    train_stop = val_start - guard
    if val_size <= 0 or train_stop <= 0:
        raise ValueError(
            f"Cannot split a scene of size {size} along axis {axis} into a held-out part of "
            f"{val_size} and a training part with a guard of {guard}. Received: val_size={val_size}"
        )
    other = slice(0, full[1 - axis])
    train = slice(0, train_stop)
    val = slice(val_start, size)
    if axis == 1:
        return (other, train), (other, val)
    return (train, other), (val, other)


def _min_guard(scale, radius):
    # LR pixel j sees the HR pixels within `radius` of its centre s j + (s - 1) / 2. With the
    # held-out region starting at HR 0 and the training region ending at -guard, find the
    # smallest guard for which the footprints (HR pixels + PSF supports) do not meet.
    guard = 0
    while True:
        last_centre = -guard - scale + (scale - 1) / 2.0
        train_max = max(-guard - 1, math.floor(last_centre + radius))
        val_min = min(0, math.ceil((scale - 1) / 2.0 - radius))
        if train_max < val_min:
            return guard
        guard += scale


def augment_arrays(arrays, rng):
    """The same random rotation by 90 degrees and flips of every array (H, W first)."""
    k = int(rng.integers(4))
    flip_h, flip_w = bool(rng.integers(2)), bool(rng.integers(2))
    out = []
    for a in arrays:
        if flip_h:
            a = a[::-1]
        if flip_w:
            a = a[:, ::-1]
        out.append(np.ascontiguousarray(np.rot90(a, k, axes=(0, 1))))
    return out


class PatchBatches(keras.utils.PyDataset):
    """What every patch dataset of the package shares: epochs, a generator of one epoch and
    the `tf.data` signature of a batch. Subclasses set `epoch`, `patch_size`, `scale` and
    implement `__len__` / `__getitem__`."""

    def on_epoch_end(self):
        self.epoch += 1

    def as_generator(self):
        """Yields `(inputs, target)` batches of one epoch, e.g. for `tf.data`."""
        for i in range(len(self)):
            yield self[i]
        self.on_epoch_end()

    def output_signature(self):
        """`tf.TensorSpec`s of a batch for `tf.data.Dataset.from_generator` (needs TF)."""
        import tensorflow as tf

        inputs, target = self[0]
        p, s = self.patch_size, self.scale
        return (
            {
                "lr_hsi": tf.TensorSpec((None, p // s, p // s, target.shape[-1]), tf.float32),
                "hr_msi": tf.TensorSpec((None, p, p, inputs["hr_msi"].shape[-1]), tf.float32),
            },
            tf.TensorSpec((None, p, p, target.shape[-1]), tf.float32),
        )


class PatchesView(keras.utils.PyDataset):
    """A dataset that re-packs the batches of another (`patches`, e.g. a `FusionPatches`):
    same length and epochs; subclasses implement `__getitem__`."""

    def __init__(self, patches, **kwargs):
        super().__init__(**kwargs)
        self.patches = patches

    def __len__(self):
        return len(self.patches)

    def on_epoch_end(self):
        self.patches.on_epoch_end()

    @property
    def epoch(self):
        return self.patches.epoch

    @epoch.setter
    def epoch(self, value):
        self.patches.epoch = value


class FusionPatches(PatchBatches):
    """Batches of aligned (LR-HSI, HR-MSI, HR-HSI) patches for `model.fit`, on any backend.

    Each item is `({"lr_hsi": (B, p/s, p/s, C), "hr_msi": (B, p, p, c)}, hr_hsi (B, p, p, C))`.
    Scenes are either simulated (give `srf`; the whole scene is degraded once with `degrade`,
    so LR pixels at a patch border see the HR pixels around them, as a real sensor does) or
    given as real pairs (`lr_hsi` and `hr_msi`). Patches start on the LR grid (HR offsets are
    multiples of `scale`) and, with `region`, lie entirely inside it. Augmentation applies
    the same random flips and rotation by a multiple of 90 degrees to the three arrays (the
    centred PSF of `degrade` makes this exact for simulated pairs).

    Args:
        hr_hsi: one `(H, W, C)` scene or a list of scenes (same C).
        scale: integer resolution ratio.
        srf: `(C, c)` spectral response used to simulate the HR-MSI. Needed unless `lr_hsi`
            and `hr_msi` are given.
        lr_hsi: optional real LR-HSI, one array or a list aligned with `hr_hsi`.
        hr_msi: optional real HR-MSI, one array or a list aligned with `hr_hsi`.
        patch_size: HR patch side, a multiple of `scale`. Defaults to 32.
        batch_size: defaults to 8.
        mode: `"random"` (random positions, redrawn every epoch) or `"grid"` (every position
            on a regular grid with step `stride`). Defaults to `"random"`.
        patches_per_epoch: number of patches per epoch in random mode. Defaults to the
            number of non-overlapping patches that fit.
        stride: grid step in HR pixels, a multiple of `scale`. Defaults to `patch_size`.
        augment: random flips and rot90. Defaults to True for `"random"`, False for `"grid"`.
        region: `(row_slice, col_slice)` in HR pixels (e.g. from `spatial_split`), applied to
            every scene. Defaults to the whole scene.
        psf_fwhm: PSF FWHM for the simulation. Defaults to `scale`.
        noise_snr_db: noise of the simulation (see `degrade`), drawn once per scene.
        degradations: optional `keras_hsifusion.data.DegradationSampler`: every patch is
            then simulated on its own under a condition drawn from it (PSF width, noise per
            image and band, MSI response), from an HR window with a margin of the widest PSF
            (reflected at the region's border, so nothing outside `region` is seen). Noise
            levels are relative to each scene region's mean square per band. Replaces `srf`,
            `psf_fwhm` and `noise_snr_db`; not with real pairs.
        hsi_bands: with `degradations`, the HSI bands (a slice or index array) of the LR-HSI
            and target; the HR-MSI is simulated from all bands. Defaults to all.
        seed: seed of positions, augmentation, noise and conditions.
        **kwargs: `workers`, `use_multiprocessing`, `max_queue_size` of `PyDataset`.

    Examples:
    >>> cube, wl = indian_pines()
    >>> srf = spectral_response("sentinel2a-10m", wl)
    >>> train, val = spatial_split(144, 144, scale=4)
    >>> ds = FusionPatches(cube[:144, :144], 4, srf, patch_size=32, region=train, seed=0)
    >>> inputs, target = ds[0]  # `model.fit(ds, epochs=...)` takes the dataset as it is
    >>> inputs["lr_hsi"].shape, inputs["hr_msi"].shape, target.shape
    ((8, 8, 8, 200), (8, 32, 32, 4), (8, 32, 32, 200))
    """

    def __init__(
        self,
        hr_hsi,
        scale,
        srf=None,
        lr_hsi=None,
        hr_msi=None,
        patch_size=32,
        batch_size=8,
        mode="random",
        patches_per_epoch=None,
        stride=None,
        augment=None,
        region=None,
        psf_fwhm=None,
        noise_snr_db=None,
        seed=None,
        degradations=None,
        hsi_bands=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if mode not in ("random", "grid"):
            raise ValueError(f"`mode` must be 'random' or 'grid'. Received: mode={mode!r}")
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ValueError(f"`scale` must be a positive integer. Received: scale={scale}")
        if patch_size % scale or patch_size <= 0:
            raise ValueError(
                f"`patch_size` must be a positive multiple of `scale` ({scale}). "
                f"Received: patch_size={patch_size}"
            )
        stride = patch_size if stride is None else stride
        if stride <= 0 or stride % scale:
            raise ValueError(
                f"`stride` must be a positive multiple of `scale`. Received: stride={stride}"
            )
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be >= 1. Received: batch_size={batch_size}")
        self.scale, self.patch_size, self.batch_size = scale, patch_size, batch_size
        self.mode, self.stride, self.seed = mode, stride, seed
        self.augment = (mode == "random") if augment is None else bool(augment)
        self.epoch = 0

        def as_list(x):
            return None if x is None else (list(x) if isinstance(x, (list, tuple)) else [x])

        hrs = as_list(hr_hsi)
        lrs, msis = as_list(lr_hsi), as_list(hr_msi)
        if (lrs is None) != (msis is None):
            raise ValueError("Give both `lr_hsi` and `hr_msi` (real pairs) or neither (simulate).")
        if degradations is not None and lrs is not None:
            raise ValueError("`degradations` simulates pairs: do not also give `lr_hsi`/`hr_msi`.")
        if lrs is None and srf is None and degradations is None:
            raise ValueError("`srf` is needed to simulate the HR-MSI when no pairs are given.")
        self.degradations = degradations
        self.hsi_bands = slice(None) if hsi_bands is None else hsi_bands
        if lrs is not None and not (len(lrs) == len(msis) == len(hrs)):
            raise ValueError(
                "`hr_hsi`, `lr_hsi` and `hr_msi` must have the same number of scenes. "
                f"Received: {len(hrs)}, {len(lrs)}, {len(msis)}"
            )
        self.scenes = []
        for i, hr in enumerate(hrs):
            hr = np.asarray(hr, dtype=np.float32)
            if hr.ndim != 3:
                raise ValueError(f"`hr_hsi[{i}]` must be (H, W, C). Received shape {hr.shape}")
            h, w = (hr.shape[0] // scale) * scale, (hr.shape[1] // scale) * scale
            hr = hr[:h, :w]
            if degradations is not None:
                lr = msi = None  # simulated per patch
            elif lrs is None:
                noise_seed = None if seed is None else seed + 7919 * (i + 1)
                lr, msi = degrade(hr, scale, srf, psf_fwhm, noise_snr_db, noise_seed)
            else:
                lr = np.asarray(lrs[i], dtype=np.float32)
                msi = np.asarray(msis[i], dtype=np.float32)
                if lr.shape[:2] != (h // scale, w // scale) or msi.shape[:2] != (h, w):
                    raise ValueError(
                        f"Scene {i}: `lr_hsi` {lr.shape} and `hr_msi` {msi.shape} do not match "
                        f"`hr_hsi` {hr.shape} at scale {scale}."
                    )
            self.scenes.append((lr, msi, hr))
        self.positions = self._all_positions(region)
        if not self.positions:
            raise ValueError(
                f"No {patch_size}x{patch_size} patch fits in the scenes/region. Received: "
                f"region={region}, scene shapes={[s[2].shape for s in self.scenes]}"
            )
        n_fit = sum(
            (r.stop - r.start) // patch_size * ((c.stop - c.start) // patch_size)
            for r, c in self.bounds
        )
        self.patches_per_epoch = patches_per_epoch or max(n_fit, 1)
        if degradations is not None:
            self._prepare_windows(degradations)

    def _prepare_windows(self, sampler):
        # Each scene's region, padded by the widest PSF's margin (half-sample reflection, as
        # `degrade` does at image borders), and its mean square per band (noise levels).
        s = self.scale
        self.margin = -(-psf_radius(s, sampler.max_psf_fwhm) // s) * s
        self.padded, self.power, self.gram = [], [], []
        for (_, _, hr), (rows, cols) in zip(self.scenes, self.bounds):
            region = hr[rows, cols]
            m = self.margin
            self.padded.append(np.pad(region, ((m, m), (m, m), (0, 0)), mode="symmetric"))
            flat = region.reshape(-1, region.shape[-1]).astype(np.float64)
            self.gram.append(flat.T @ flat / len(flat))
            self.power.append(np.diag(self.gram[-1]).copy())

    def _simulate(self, i, y, x, rng):
        """The (lr, msi, hr) patch at HR (y, x) of scene i under a freshly drawn condition."""
        sampler, p, s, m = self.degradations, self.patch_size, self.scale, self.margin
        rows, cols = self.bounds[i]
        y0, x0 = y - rows.start, x - cols.start
        window = self.padded[i][y0 : y0 + p + 2 * m, x0 : x0 + p + 2 * m]
        hr = window[m : m + p, m : m + p]
        keep = self.hsi_bands
        cond = sampler.draw(rng)
        a, b = m // s, (m + p) // s
        lr = spatial_degrade(window[..., keep], s, cond["psf_fwhm"])[a:b, a:b]
        srf = sampler.srf(cond)
        msi = (hr.astype(np.float64) @ srf).astype(np.float32)
        snr_lr, snr_msi = sampler.noise_snr_db(cond)
        if snr_lr is not None:
            snr_lr = np.broadcast_to(snr_lr, hr.shape[-1:])[keep]
            lr = add_noise(lr, snr_lr, rng, power=self.power[i][keep])
        if snr_msi is not None:
            # mean square of each MSI band over the region: srf_j^T G srf_j
            msi_power = np.einsum("cj,cd,dj->j", srf, self.gram[i], srf)
            msi = add_noise(msi, snr_msi, rng, power=msi_power)
        return lr, msi, np.ascontiguousarray(hr[..., keep])

    def _all_positions(self, region):
        self.bounds = []
        positions = []
        for i, (_, _, hr) in enumerate(self.scenes):
            rows, cols = (
                (slice(0, hr.shape[0]), slice(0, hr.shape[1])) if region is None else region
            )
            r0, r1, _ = rows.indices(hr.shape[0])
            c0, c1, _ = cols.indices(hr.shape[1])
            r0, c0 = -(-r0 // self.scale) * self.scale, -(-c0 // self.scale) * self.scale
            self.bounds.append((slice(r0, r1), slice(c0, c1)))
            for y in range(r0, r1 - self.patch_size + 1, self.stride):
                for x in range(c0, c1 - self.patch_size + 1, self.stride):
                    positions.append((i, y, x))
        return positions

    def _random_positions(self, rng, n):
        out = []
        for _ in range(n):
            i = int(rng.integers(len(self.scenes)))
            rows, cols = self.bounds[i]
            ny = (rows.stop - rows.start - self.patch_size) // self.scale + 1
            nx = (cols.stop - cols.start - self.patch_size) // self.scale + 1
            if ny <= 0 or nx <= 0:
                i, y, x = self.positions[int(rng.integers(len(self.positions)))]
            else:
                y = rows.start + self.scale * int(rng.integers(ny))
                x = cols.start + self.scale * int(rng.integers(nx))
            out.append((i, y, x))
        return out

    def __len__(self):
        n = len(self.positions) if self.mode == "grid" else self.patches_per_epoch
        return math.ceil(n / self.batch_size)

    def _rng(self, index):
        return np.random.default_rng(
            [self.seed or 0, self.epoch, index, 0 if self.seed is None else 1]
        )

    def __getitem__(self, index):
        if index < 0 or index >= len(self):
            raise IndexError(f"Batch index out of range. Received: index={index}, len={len(self)}")
        rng = self._rng(index) if self.seed is not None else np.random.default_rng()
        if self.mode == "grid":
            batch = self.positions[index * self.batch_size : (index + 1) * self.batch_size]
        else:
            count = min(self.batch_size, self.patches_per_epoch - index * self.batch_size)
            batch = self._random_positions(rng, count)
        lrs, msis, hrs = [], [], []
        p, s = self.patch_size, self.scale
        for i, y, x in batch:
            lr, msi, hr = self.scenes[i]
            if self.degradations is not None:
                arrays = list(self._simulate(i, y, x, rng))
            else:
                arrays = [
                    lr[y // s : (y + p) // s, x // s : (x + p) // s],
                    msi[y : y + p, x : x + p],
                    hr[y : y + p, x : x + p],
                ]
            if self.augment:
                arrays = augment_arrays(arrays, rng)
            lrs.append(arrays[0])
            msis.append(arrays[1])
            hrs.append(arrays[2])
        return {"lr_hsi": np.stack(lrs), "hr_msi": np.stack(msis)}, np.stack(hrs)
