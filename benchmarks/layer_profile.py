"""Per-layer forward and forward+backward time of a zoo model (JAX or torch), one layer at a time.

Each top-level layer of the model gets the inputs it sees in a forward pass of the model at
the benchmark size, and is timed alone (best of REPEATS after one call): forward, and forward
plus the gradient of sum(output**2) w.r.t. its weights and inputs (`jax.jit` of `jax.grad`
on JAX, autograd on torch). Prints one line per layer and writes JSON.

    KERAS_BACKEND=jax python benchmarks/layer_profile.py hssdct small 2 > profile.txt

With `--ops STEPS` (torch only) it instead runs the whole training step the benchmark runner
times (`train_on_batch` with the model's official loss and optimiser, `khf train`'s mode)
under `torch.profiler` for STEPS steps, and prints where the time goes: by phase (forward,
backward, optimiser, Python outside any op), by kind of op (convolution and matmul kernels,
copies, elementwise, ops that only dispatch: views and allocations), and the ops by self
time. `--official DIR` profiles the official PyTorch step the same way
(`tools/official_harness.py`, a checkout in DIR) after ours.

    KERAS_BACKEND=torch python benchmarks/layer_profile.py msst_net small --ops 3 \\
        --official /path/to/MSST-Net > ops.txt
"""

# ruff: noqa: B023 - every closure is called in the iteration that defines it
import argparse
import json
import os
import sys
import time

import keras
import numpy as np

from keras_hsifusion.profiling import benchmark as bm
from keras_hsifusion.profiling.native import best_seconds, cpu_model, framework_version
from keras_hsifusion.utils.runtime import malloc_env

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
B = keras.backend.backend()

# Op kinds of the `--ops` summary (torch op names).
CONV = {
    "aten::mkldnn_convolution",
    "aten::convolution_backward",
    "aten::_slow_conv2d_forward",
    "aten::_slow_conv2d_backward",
}
MATMUL = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"}
COPY = {"aten::copy_"}
DISPATCH_ONLY = {
    "aten::view",
    "aten::_unsafe_view",
    "aten::reshape",
    "aten::permute",
    "aten::transpose",
    "aten::t",
    "aten::as_strided",
    "aten::select",
    "aten::slice",
    "aten::expand",
    "aten::unsqueeze",
    "aten::squeeze",
    "aten::detach",
    "aten::alias",
    "aten::empty",
    "aten::empty_strided",
    "aten::resize_",
    "aten::to",
    "aten::_to_copy",
    "aten::contiguous",
    "aten::clone",
    "aten::lift_fresh",
    "aten::item",
    "aten::_local_scalar_dense",
}


def parse_args():
    p = argparse.ArgumentParser(prog="python benchmarks/layer_profile.py")
    p.add_argument("model")
    p.add_argument("size")
    p.add_argument("reps", nargs="?", type=int, default=3, help="per-layer repeats")
    p.add_argument("--ops", type=int, default=0, metavar="STEPS", help="torch.profiler mode")
    p.add_argument("--official", metavar="DIR", help="with --ops: also the official step")
    p.add_argument("--rows", type=int, default=40, help="with --ops: ops listed")
    return p.parse_args()


def header():
    env = [f"{k}={os.environ[k]}" for k in malloc_env() if k in os.environ]
    command = " ".join(
        [*env, f"KERAS_BACKEND={B} python benchmarks/layer_profile.py", *sys.argv[1:]]
    )
    print(f"# {command}")
    print(
        f"# {framework_version()}, keras {keras.__version__}, {cpu_model()}, "
        f"{os.cpu_count()} logical CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
        f"allocator {bm.allocator_setting()}, load average {os.getloadavg()[0]:.2f}"
    )


def tonp(t):
    return keras.ops.convert_to_numpy(t)


def layer_profile(name, size, reps):
    model = bm.build_model(name, "float32")
    shapes = bm.input_shapes(model, name, size, 1)
    rng = np.random.default_rng(0)
    x = {k: rng.random(s, dtype=np.float32) for k, s in shapes.items()}
    layers = [l for l in model.layers if not isinstance(l, keras.layers.InputLayer)]
    probe = keras.Model(model.inputs, [l.input for l in layers])
    ins = probe(x)
    rows = []
    for layer, inp in zip(layers, ins):
        inp = keras.tree.map_structure(lambda t: np.asarray(tonp(t)), inp)
        if B == "jax":
            import jax
            import jax.numpy as jnp

            tv = [v.value for v in layer.trainable_variables]
            ntv = [v.value for v in layer.non_trainable_variables]

            def fwd(tv, inp):
                out, _ = layer.stateless_call(tv, ntv, inp)
                return out

            def lossf(tv, inp):
                out = fwd(tv, inp)
                return sum(jnp.sum(o * o) for o in jax.tree_util.tree_leaves(out))

            ff = jax.jit(fwd)
            gf = jax.jit(jax.grad(lossf, argnums=(0, 1)))
            jinp = jax.tree_util.tree_map(jnp.asarray, inp)
            t_f = best_seconds(lambda: ff(tv, jinp), reps)
            t_g = best_seconds(lambda: gf(tv, jinp), reps)
        elif B == "torch":
            import torch

            tinp = keras.tree.map_structure(lambda a: torch.tensor(a, requires_grad=True), inp)

            def f():
                with torch.no_grad():
                    layer(tinp)

            def g():
                out = layer(tinp)
                l = sum((o * o).sum() for o in keras.tree.flatten(out))
                l.backward()

            t_f = best_seconds(f, reps)
            t_g = best_seconds(g, reps)
        else:
            raise SystemExit("jax or torch only")
        rows.append((layer.name, type(layer).__name__, t_f, t_g))
        print(
            f"{layer.name:28s} {type(layer).__name__:18s} fwd {t_f * 1e3:9.1f} ms  "
            f"f+b {t_g * 1e3:9.1f} ms  ratio {t_g / max(t_f, 1e-9):5.1f}",
            flush=True,
        )
    tf_ = sum(r[2] for r in rows)
    tg = sum(r[3] for r in rows)
    print(f"TOTAL fwd {tf_ * 1e3:.1f} ms  f+b {tg * 1e3:.1f} ms")
    json.dump(rows, open(f"layer_profile_{name}_{size}_{B}.json", "w"))


def our_step(name, size):
    """`(step, optimizer range name)`: the runner's training step of the zoo model."""
    import torch

    model = bm.build_model(name, "float32")
    shapes = bm.input_shapes(model, name, size, 1)
    rng = np.random.default_rng(0)
    x = {k: rng.random(s, dtype=np.float32) for k, s in shapes.items()}
    y = rng.random(tuple(model.compute_output_shape(shapes)), dtype=np.float32)
    loss, optimizer = bm.training_step_setup(name)
    jit, eager, _ = bm.compile_flags("default")
    model.compile(optimizer=optimizer, loss=loss, jit_compile=jit, run_eagerly=eager)
    apply = optimizer.apply

    def annotated_apply(*args, **kwargs):  # names the optimiser's ops in the profile
        with torch.profiler.record_function("optimizer"):
            return apply(*args, **kwargs)

    optimizer.apply = annotated_apply
    return lambda: model.train_on_batch(x, y), "optimizer"


def official_step(name, size, path):
    import torch

    sys.path.insert(0, REPO)
    from tools.official_harness import build_official, official_training_step

    lr, hr = bm.model_sizes(name)[size]
    net = build_official(name, path, lr[-1], hr[-1])
    x = (torch.rand(1, lr[-1], *lr[:2]), torch.rand(1, hr[-1], *hr[:2]))
    step = official_training_step(name, path, net, x, torch.rand(1, lr[-1], *hr[:2]))
    return step, "Optimizer."


def _phase(event, optimizer_range):
    p = event
    while p is not None:
        if p.name.startswith(optimizer_range) or p.name.startswith("Optimizer.zero_grad"):
            return "optimiser"
        if p.name.startswith("autograd::engine::evaluate_function"):
            return "backward"
        p = p.cpu_parent
    return "forward + loss"


def _kind(event):
    if event.name in CONV:
        return "convolution kernels"
    if event.name in MATMUL or "scaled_dot_product" in event.name:
        return "matmul / attention kernels"
    if event.name in COPY:
        return "copies (aten::copy_)"
    if event.name in DISPATCH_ONLY or event.name.endswith("Backward0"):
        return "dispatch only (views, allocation, autograd nodes)"
    if event.name.startswith("autograd::engine") or event.name.startswith("torch::autograd"):
        return "autograd engine"
    return "elementwise and other ops"


def ops_profile(label, step, optimizer_range, steps, rows):
    """Profiles `steps` calls of `step` (after 2 warm-ups) and prints the summary tables."""
    from torch.profiler import ProfilerActivity, profile

    for _ in range(2):
        step()
    plain = []
    for _ in range(3):
        t0 = time.perf_counter()
        step()
        plain.append(time.perf_counter() - t0)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        wall = (time.perf_counter() - t0) / steps
    events = prof.events()
    user = {e.name for e in events if getattr(e, "is_user_annotation", False)}
    ops = [e for e in events if e.name not in user and not e.name.startswith("Optimizer.")]
    in_ops = sum(e.self_cpu_time_total for e in ops) / 1e3 / steps
    by_phase, by_kind = {}, {}
    for e in ops:
        t = e.self_cpu_time_total / 1e3 / steps
        by_phase[_phase(e, optimizer_range)] = by_phase.get(_phase(e, optimizer_range), 0) + t
        by_kind[_kind(e)] = by_kind.get(_kind(e), 0) + t
    by_phase["Python and framework, outside ops"] = wall * 1e3 - in_ops
    print(f"\n## {label}")
    print(
        f"step without profiler: median {sorted(plain)[1] * 1e3:.1f} ms "
        f"(of {[round(t * 1e3, 1) for t in plain]}); with profiler: {wall * 1e3:.1f} ms/step, "
        f"{len(ops) // steps} op calls/step, {in_ops:.1f} ms/step inside ops (self time)"
    )
    for title, table in (("phase", by_phase), ("kind of op (self time)", by_kind)):
        print(f"\nms/step by {title}:")
        for key, value in sorted(table.items(), key=lambda kv: -kv[1]):
            print(f"  {key:52s} {value:8.1f} ms  {100 * value / (wall * 1e3):5.1f} %")
    table = prof.key_averages().table(
        sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=60
    )
    print(f"\nops by self CPU time, {steps} steps (totals over all steps):\n{table}", flush=True)


def main():
    args = parse_args()
    header()
    if not args.ops:
        layer_profile(args.model, args.size, args.reps)
    elif B != "torch":
        raise SystemExit("--ops: torch only")
    else:
        step, rng = our_step(args.model, args.size)
        label = f"{args.model} {args.size}"
        ops_profile(f"keras_hsifusion ({B}), {label}", step, rng, args.ops, args.rows)
        if args.official:
            step, rng = official_step(args.model, args.size, args.official)
            ops_profile(f"official PyTorch, {label}", step, rng, args.ops, args.rows)
    print(f"# load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
