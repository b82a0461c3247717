"""Data-parallel training on each backend's own distribution engine (config key `distribution`).

`setup_distribution(spec)` returns a `DistributedContext` that the runner trains under:

- JAX: `keras.distribution.DataParallel` over the first `devices` devices (all by default),
  entered with its `scope()`; Keras shards every global batch across them and the jitted
  step averages the gradients. With several processes (`KERAS_DISTRIBUTION_JOB_ADDRESSES`,
  or a SLURM job step of more than one task) `keras.distribution.initialize()` joins them
  first, and each process feeds its slice of the global batch.
- TensorFlow: `tf.distribute.MirroredStrategy` over the visible GPUs (else the logical
  CPUs), or `MultiWorkerMirroredStrategy` when `TF_CONFIG` is set; Keras splits each global
  batch across the replicas and sums the gradients of the per-replica losses scaled by
  1 / replicas.
- PyTorch: `torch.distributed` with one process per device, launched by `torchrun` (its
  `RANK`, `WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`, `LOCAL_RANK`; `gloo` on CPU, `nccl`
  on GPU). Keras' `fit` runs the backward pass itself, so torch's
  `DistributedDataParallel` class (which hooks a module's own backward) is not used; the
  same arithmetic is done where `fit` can see it (`prepare_model`): rank 0's weights are
  broadcast to every rank, and the compiled optimiser's `apply` first averages the
  gradients of all ranks with one `all_reduce`. Each rank trains on rows
  `[r B/N, (r + 1) B/N)` of every global batch of `B` (`ShardedBatches`).

With `distribution=None` the context is a no-op of one replica. The learning rate of a
config is the one of its global batch (`data.batch_size`): nothing is rescaled.
"""

import contextlib
import os

import keras
import numpy as np

from keras_hsifusion.utils.validation import check_int

__all__ = [
    "DistributedContext",
    "ShardedBatches",
    "check_distribution",
    "check_global_batch",
    "setup_distribution",
]

DISTRIBUTIONS = ("data_parallel",)


def check_distribution(value):
    """Validates a config's `distribution`: None, `"data_parallel"` or
    `{"class": "data_parallel", "devices": N}`; returns None or the dict form."""
    if value is None:
        return None
    spec = {"class": value} if isinstance(value, str) else value
    if not isinstance(spec, dict) or spec.get("class") not in DISTRIBUTIONS:
        raise ValueError(
            f"`distribution` must be None, 'data_parallel' or "
            f'{{"class": "data_parallel", "devices": N}}. Received: distribution={value!r}'
        )
    unknown = sorted(set(spec) - {"class", "devices"})
    if unknown:
        raise ValueError(f"Unknown key(s) {unknown} in `distribution`. Received: {value!r}")
    devices = spec.get("devices")
    check_int("distribution.devices", devices, allow_none=True)
    return {"class": spec["class"], "devices": devices}


def check_global_batch(batch_size, patches_per_epoch, replicas):
    """Every global batch of an epoch, the last included, must split evenly over replicas."""
    last = patches_per_epoch % batch_size if patches_per_epoch else 0
    for name, value in (("data.batch_size", batch_size), ("the last batch", last)):
        if value % replicas:
            raise ValueError(
                f"`{name}` ({value}; the global batch) must be a multiple of the number of "
                f"replicas ({replicas}) for data-parallel training. Received: "
                f"batch_size={batch_size}, patches_per_epoch={patches_per_epoch}"
            )


class ShardedBatches(keras.utils.PyDataset):
    """Rows `[rank B/shards, (rank + 1) B/shards)` of every batch of a `PyDataset`.

    Every process builds the same sequence of global batches (same seed) and keeps its own
    slice, so no sample is seen twice and the union of the slices is the global batch.
    """

    def __init__(self, dataset, rank, shards, **kwargs):
        super().__init__(**kwargs)
        self.dataset, self.rank, self.shards = dataset, rank, shards

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        batch = self.dataset[index]
        n = len(keras.tree.flatten(batch)[0])
        if n % self.shards:
            raise ValueError(
                f"A global batch of {n} does not split over {self.shards} processes. "
                f"Received: batch index={index}"
            )
        lo, hi = self.rank * n // self.shards, (self.rank + 1) * n // self.shards
        return keras.tree.map_structure(lambda a: a[lo:hi], batch)

    def on_epoch_end(self):
        self.dataset.on_epoch_end()

    @property
    def epoch(self):
        return self.dataset.epoch

    @epoch.setter
    def epoch(self, value):
        self.dataset.epoch = value


class _ReplicaMeanLogs(keras.callbacks.Callback):
    # torch: each rank's `loss` is the mean over its own rows; the mean over the ranks (equal
    # slices) is the loss of the global batch. First in the callback list.
    def __init__(self, device):
        super().__init__()
        self.device = device

    def on_epoch_end(self, epoch, logs=None):
        import torch
        import torch.distributed as dist

        keys = sorted(k for k, v in (logs or {}).items() if np.ndim(v) == 0)
        if not keys:
            return
        t = torch.tensor([float(logs[k]) for k in keys], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        logs.update(zip(keys, (t / dist.get_world_size()).tolist()))


class DistributedContext:
    """Where a run trains: `scope()`, `rank`, `world_size`, `num_replicas`, `is_chief`.

    `rank`/`world_size` count processes (only rank 0, the chief, writes files), and
    `num_replicas` counts the model replicas across all of them (devices). Build with
    `setup_distribution`.
    """

    def __init__(self, spec=None):
        self.spec = spec
        self.backend = keras.backend.backend()
        self.rank, self.world_size, self.num_replicas = 0, 1, 1
        self.devices = []
        self._scope = contextlib.nullcontext
        self._strategy = None
        self._torch_device = "cpu"
        if spec is not None:
            getattr(self, f"_setup_{self.backend}")(spec["devices"])

    @property
    def is_chief(self):
        return self.rank == 0

    def scope(self):
        """Context manager to build, compile, load and fit models in."""
        return self._scope()

    # --- backends -------------------------------------------------------------------------
    def _setup_jax(self, devices):
        import jax

        multi = os.environ.get("KERAS_DISTRIBUTION_JOB_ADDRESSES") or (
            int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_JOB_ID" in os.environ
        )
        if multi and not jax.distributed.is_initialized():
            keras.distribution.initialize()
        found = keras.distribution.list_devices()
        self.devices = found[:devices] if devices else found
        self.rank, self.world_size = jax.process_index(), jax.process_count()
        self.num_replicas = len(self.devices)
        self._scope = keras.distribution.DataParallel(devices=self.devices).scope

    def _setup_tensorflow(self, devices):
        import tensorflow as tf

        if os.environ.get("TF_CONFIG"):
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
            resolver = strategy.cluster_resolver
            spec = resolver.cluster_spec()
            chief = "chief" in spec.jobs
            self.world_size = spec.num_tasks("worker") + (1 if chief else 0)
            task = resolver.task_id or 0
            self.rank = 0 if resolver.task_type == "chief" else task + (1 if chief else 0)
        else:
            pool = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
            self.devices = [d.name for d in pool][: devices or None]
            strategy = tf.distribute.MirroredStrategy(self.devices)
        self._strategy = strategy
        self.num_replicas = strategy.num_replicas_in_sync
        self._scope = strategy.scope

    def _setup_torch(self, devices):
        import torch
        import torch.distributed as dist

        if not dist.is_initialized() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            if torch.cuda.is_available():
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        if dist.is_initialized():
            self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
            if dist.get_backend() == "nccl":
                self._torch_device = f"cuda:{torch.cuda.current_device()}"
        self.num_replicas = self.world_size
        if devices is not None and devices != self.world_size:
            raise ValueError(
                "On PyTorch, `distribution.devices` must equal the number of processes that "
                f"torchrun started ({self.world_size}). Received: devices={devices}"
            )
        self.devices = [self._torch_device]

    # --- what the runner calls -------------------------------------------------------------
    @property
    def data_shards(self):
        """Processes that each feed their own slice of the global batch (`shard`)."""
        return self.world_size if self.backend in ("torch", "jax") else 1

    def shard(self, dataset):
        """The dataset this process feeds: its slice of each global batch, or all of it."""
        if self.data_shards == 1:
            return dataset
        return ShardedBatches(dataset, self.rank, self.data_shards)

    def prepare_model(self, model):
        """torch with several processes: broadcast rank 0's weights (and optimiser state),
        and average the gradients over the ranks before the optimiser applies them."""
        if self.backend != "torch" or self.world_size == 1:
            return model
        import torch.distributed as dist

        optimizer = model.optimizer
        variables = list(model.weights) + list(optimizer.variables if optimizer else [])
        for v in variables:
            dist.broadcast(v.value.data, src=0)
        if optimizer is not None and not getattr(optimizer, "_khf_all_reduce", False):
            optimizer.apply = _averaging_apply(optimizer.apply, self.world_size)
            optimizer._khf_all_reduce = True
        return model

    def callbacks(self):
        """Callbacks to put first in `fit`'s list (torch: the mean of each epoch's logs)."""
        if self.backend == "torch" and self.world_size > 1:
            return [_ReplicaMeanLogs(self._torch_device)]
        return []

    def barrier(self):
        """Waits for every process (after the chief has recovered a run folder)."""
        if self.world_size == 1:
            return
        if self.backend == "torch":
            import torch.distributed as dist

            dist.barrier()
        elif self.backend == "jax":
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices("keras_hsifusion")
        else:
            import tensorflow as tf

            s = self._strategy
            s.reduce("SUM", s.run(lambda: tf.constant(1.0)), axis=None)

    def describe(self, batch_size):
        """One line for the run's log: engine, replicas, global and per-replica batch."""
        if self.spec is None:
            return f"distribution: none (1 device), batch {batch_size}"
        engine = {
            "jax": "keras.distribution.DataParallel",
            "tensorflow": type(self._strategy).__name__ if self._strategy else "",
            "torch": "torch.distributed",
        }[self.backend]
        return (
            f"distribution: data_parallel via {engine}, {self.num_replicas} replicas, "
            f"{self.world_size} process(es), global batch {batch_size}, per-replica batch "
            f"{batch_size // self.num_replicas}"
        )


def _averaging_apply(apply, world_size):
    def apply_averaged(grads, trainable_variables=None):
        import torch
        import torch.distributed as dist

        present = [i for i, g in enumerate(grads) if g is not None]
        if present:
            flat = torch.cat([grads[i].reshape(-1) for i in present])
            dist.all_reduce(flat)
            flat /= world_size
            grads = list(grads)
            offset = 0
            for i in present:
                n = grads[i].numel()
                grads[i] = flat[offset : offset + n].view_as(grads[i])
                offset += n
        return apply(grads, trainable_variables)

    return apply_averaged


def setup_distribution(spec=None):
    """The `DistributedContext` of a config's `distribution` (validated here)."""
    return DistributedContext(check_distribution(spec))
