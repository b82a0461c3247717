"""Backend-specific probes: native FLOP counters, device sync, memory, compiled callables.

Run-time settings (threads, allocator, compilation cache, jit/eager choice) are in
`keras_hsifusion.utils.runtime`.

Everything here imports the active backend's framework (torch, jax or tensorflow) lazily,
inside the function that needs it, so importing `keras_hsifusion` never pulls a framework in.
What each native counter counts differently from `count_flops` is in docs/flops.md.
One cohesive module: it is the one place where backend frameworks are probed (besides the
run-time settings of `utils.runtime` and the torch kernels of `ops._torch`), so its probes
stay together.
"""

import functools
import math
import os
import re

import keras


def backend():
    return keras.backend.backend()


def _check_backend(allowed, what):
    name = backend()
    if name not in allowed:
        raise ValueError(
            f"{what} is available on the {', '.join(allowed)} backend(s). "
            f"Received: KERAS_BACKEND={name!r}"
        )
    return name


# --------------------------------------------------------------------------------------------
# Native FLOP counters.


def native_flops(model, inputs):
    """FLOPs of one forward pass of `model(inputs)` by the active backend's own counter.

    - jax: `jax.jit(stateless_call).lower(...).cost_analysis()["flops"]` (XLA
      counts every HLO op, elementwise included; convolutions without zero-padding taps).
    - torch: `torch.utils.flop_counter.FlopCounterMode` (convolutions and matmuls only).
    - tensorflow: `tf.compat.v1.profiler` on the frozen concrete function (matmuls,
      convolutions, bias adds and some elementwise ops; grouped convolutions are missed).

    Args:
        model: a Keras model.
        inputs: what `model` is called on (arrays, or a dict of arrays).

    Returns:
        int, FLOPs (2 per multiply-add).
    """
    name = backend()
    if name == "jax":
        return _jax_flops(model, inputs)
    if name == "torch":
        return _torch_flops(model, inputs)
    if name == "tensorflow":
        return tf_profiler_flops(model, inputs)
    raise ValueError(f"No native FLOP counter for this backend. Received: backend={name!r}")


def _jax_flops(model, inputs, compiled=False):
    import jax

    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]

    def fn(tv, x):
        return model.stateless_call(tv, ntv, x, training=False)[0]

    lowered = jax.jit(fn).lower(tv, inputs)
    # The lowered module's analysis skips XLA's optimisation passes (seconds instead of a
    # minute on CPU); after fusion the compiled count differs by a few percent.
    analysis = (lowered.compile() if compiled else lowered).cost_analysis()
    if isinstance(analysis, (list, tuple)):  # older jax returns one dict per device
        analysis = analysis[0]
    return int(analysis["flops"])


def _torch_flops(model, inputs):
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(inputs, training=False)
    return int(counter.get_total_flops())


def tf_profiler_flops(model, inputs, op_types=None, add_einsum=False):
    """TensorFlow profiler FLOPs of the frozen graph of `model(inputs)` (TF backend only).

    Args:
        model: a Keras model.
        inputs: arrays or a dict of arrays; only their shapes and dtypes are used.
        op_types: optional list of TF op-type regexes to count (e.g.
            `["MatMul", "BatchMatMul.*", "Conv2D"]` for the multiply-add part only);
            default: all ops the profiler has a FLOP rule for.
        add_einsum: the profiler has no FLOP rule for `Einsum` nodes (it counts them as 0);
            if True, `2 * prod(index sizes)` of every `Einsum` node of the same graph is
            added.

    Returns:
        int, FLOPs.
    """
    _check_backend(("tensorflow",), "tf_profiler_flops")
    import tensorflow as tf

    graph = _tf_frozen_graph(model, inputs)
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    if op_types is not None:
        options["account_type_regexes"] = list(op_types)
    total = int(tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops)
    if add_einsum:
        for op in graph.get_operations():
            if op.type == "Einsum":
                total += _einsum_flops(op.get_attr("equation"), [i.shape for i in op.inputs])
    return total


_FROZEN = {}


def _tf_frozen_graph(model, inputs):
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    spec = keras.tree.map_structure(lambda x: tf.TensorSpec(tuple(x.shape), x.dtype), inputs)
    key = (id(model), str(spec))
    if key not in _FROZEN:  # freezing a large model takes many seconds: keep the last one
        fn = tf.function(lambda x: model(x, training=False))
        _FROZEN.clear()
        _FROZEN[key] = (model, convert_variables_to_constants_v2(fn.get_concrete_function(spec)))
    return _FROZEN[key][1].graph


def _einsum_flops(equation, shapes):
    if isinstance(equation, bytes):
        equation = equation.decode()
    lhs = equation.split("->")[0].split(",")
    sizes = {}
    for spec, shape in zip(lhs, shapes):
        if "..." in spec:
            raise ValueError(f"Unsupported einsum equation. Received: equation={equation!r}")
        sizes.update(zip(spec, (int(d) for d in shape)))
    return 2 * math.prod(sizes.values())


def jax_matmul_flops(model, inputs):
    """2 x multiply-adds of the `dot_general`/`conv_general_dilated` ops of the JAX program.

    The multiply-add part of what XLA's cost analysis counts, read from the jaxpr of
    `model(inputs)` (convolutions include zero-padding taps, like `count_flops`). JAX only.
    """
    _check_backend(("jax",), "jax_matmul_flops")
    import jax

    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]

    def fn(tv, x):
        return model.stateless_call(tv, ntv, x, training=False)[0]

    return _jaxpr_flops(jax.make_jaxpr(fn)(tv, inputs).jaxpr)


def _jaxpr_flops(jaxpr):
    import jax

    try:  # jax.core.jaxprs_in_params is deprecated in favour of jax.extend.core's
        from jax.extend.core import jaxprs_in_params
    except ImportError:
        jaxprs_in_params = jax.core.jaxprs_in_params
    total = 0
    for eqn in jaxpr.eqns:
        prim = eqn.primitive.name
        if prim == "dot_general":
            lhs, rhs = (v.aval.shape for v in eqn.invars[:2])
            (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
            rhs_free = [d for i, d in enumerate(rhs) if i not in rc and i not in rb]
            total += 2 * math.prod(lhs) * math.prod(rhs_free)
        elif prim == "conv_general_dilated":
            out = eqn.outvars[0].aval.shape
            rhs = eqn.invars[1].aval.shape
            dn = eqn.params["dimension_numbers"]
            spec = dn.rhs_spec  # (out-feature dim, in-feature dim, spatial dims...)
            k_spatial = math.prod(rhs[d] for d in spec[2:])
            # A transposed conv is a conv over a zero-dilated input: only 1 / prod(dilation)
            # of its taps are real (exact when the kernel is a multiple of the stride).
            dilation = math.prod(eqn.params.get("lhs_dilation") or (1,))
            total += 2 * math.prod(out) * k_spatial * rhs[spec[1]] // dilation
        for sub in jaxprs_in_params(eqn.params):
            total += _jaxpr_flops(sub)
    return total


# --------------------------------------------------------------------------------------------
# Synchronisation, memory, compiled callables.


def sync(x):
    """Waits until every array in `x` is computed (asynchronous GPU/TPU dispatch)."""
    name = backend()
    flat = keras.tree.flatten(x)
    if name == "jax":
        for t in flat:
            if hasattr(t, "block_until_ready"):
                t.block_until_ready()
    elif name == "torch":
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
    elif name == "tensorflow":
        for t in flat:  # reading a value forces completion
            if hasattr(t, "numpy"):
                t.numpy()
    return x


def device_description():
    """The accelerator in use, or the CPU model, as a short string."""
    name = backend()
    try:
        if name == "jax":
            import jax

            d = jax.devices()[0]
            if d.platform != "cpu":
                return f"{d.platform}: {d.device_kind}"
        elif name == "torch":
            import torch

            if torch.cuda.is_available():
                return f"cuda: {torch.cuda.get_device_name(0)}"
        elif name == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if gpus:
                details = tf.config.experimental.get_device_details(gpus[0])
                return f"gpu: {details.get('device_name', gpus[0].name)}"
    except Exception:  # noqa: BLE001 - a description is best effort
        pass
    return f"cpu: {cpu_model()} ({os.cpu_count()} logical cores)"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def on_accelerator():
    return not device_description().startswith("cpu")


def reset_peak_memory():
    """Resets the peak-memory counter: the accelerator's, or the process's peak RSS (Linux)."""
    name = backend()
    if on_accelerator():
        if name == "torch":
            import torch

            torch.cuda.reset_peak_memory_stats()
        elif name == "tensorflow":
            import tensorflow as tf

            tf.config.experimental.reset_memory_stats("GPU:0")
        return  # jax cannot reset its device peak; see peak_memory
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
    except OSError:
        pass


def peak_memory():
    """(bytes, what) of the peak memory since `reset_peak_memory`.

    On an accelerator: the device allocator's peak (`jax` reports its peak since start). On
    CPU: the process's peak resident set size (VmHWM), which includes the framework itself.
    """
    name = backend()
    if on_accelerator():
        try:
            if name == "torch":
                import torch

                return int(torch.cuda.max_memory_allocated()), "device peak allocated"
            if name == "tensorflow":
                import tensorflow as tf

                return int(tf.config.experimental.get_memory_info("GPU:0")["peak"]), "device peak"
            if name == "jax":
                import jax

                stats = jax.devices()[0].memory_stats() or {}
                return int(stats.get("peak_bytes_in_use", 0)), "device peak since start"
        except Exception:  # noqa: BLE001
            return 0, "unavailable"
    try:
        with open("/proc/self/status") as f:
            text = f.read()
        kb = int(re.search(r"VmHWM:\s+(\d+)\s+kB", text).group(1))
        return kb * 1024, "process peak RSS"
    except (OSError, AttributeError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "process peak RSS"


def framework_version():
    name = backend()
    if name == "jax":
        import jax

        return f"jax {jax.__version__}"
    if name == "torch":
        import torch

        return f"torch {torch.__version__}"
    import tensorflow as tf

    return f"tensorflow {tf.__version__}"


def matmul_peak(n=2048, dtype="float32", repeats=5):
    """Measured GFLOP/s of a compiled `n x n` matmul on the active backend (best of repeats)."""
    import numpy as np

    a = keras.ops.convert_to_tensor(np.random.rand(n, n).astype("float32"), dtype=dtype)
    fn = compile_function(lambda x: keras.ops.matmul(x, x))
    return 2 * n**3 / best_seconds(lambda: fn(a), repeats) / 1e9


def best_seconds(fn, repeats=5):
    """Fastest of `repeats` synchronised calls `fn()`, after one untimed (compiling) call."""
    import time

    sync(fn())
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        sync(fn())
        best = min(best, time.perf_counter() - t0)
    return best


def kernel_peaks(n=4096, repeats=5):
    """Float32 GFLOP/s of an `n x n` matmul through each kernel path of the active backend.

    TensorFlow: a `tf.function` graph (its oneDNN/Eigen kernel) and XLA; JAX: `jax.jit`;
    PyTorch: `torch.matmul` (MKL/oneDNN; `torch.compile` calls the same kernel). The best
    over all backends is the machine's float32 peak that the benchmark tables divide by.

    Returns:
        `{"<backend> <kernel>": GFLOP/s}` (best of `repeats` synchronised calls each).
    """
    import numpy as np

    a_np = np.random.default_rng(0).random((n, n), dtype=np.float32)
    name = backend()
    if name == "tensorflow":
        import tensorflow as tf

        a = tf.constant(a_np)
        kernels = {
            "tf.function": tf.function(lambda x: tf.matmul(x, x), jit_compile=False),
            "tf.function(jit_compile)": tf.function(lambda x: tf.matmul(x, x), jit_compile=True),
        }
    elif name == "jax":
        import jax

        a = jax.numpy.asarray(a_np)
        kernels = {"jax.jit": jax.jit(lambda x: x @ x)}
    else:
        import torch

        a = torch.from_numpy(a_np)
        kernels = {"torch.matmul": lambda x: torch.matmul(x, x)}
    return {
        f"{name} {kernel}": 2 * n**3 / best_seconds(functools.partial(fn, a), repeats) / 1e9
        for kernel, fn in kernels.items()
    }


def compile_function(fn):
    """`fn` compiled by the backend's compiler: jax.jit, tf.function(jit_compile), torch.compile."""
    name = backend()
    if name == "jax":
        import jax

        return jax.jit(fn)
    if name == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=True)
    import torch

    return torch.compile(fn)
