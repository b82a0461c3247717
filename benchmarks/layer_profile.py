"""Per-layer forward and forward+backward time of a zoo model (JAX or torch), one layer at a time.

Each top-level layer of the model gets the inputs it sees in a forward pass of the model at
the benchmark size, and is timed alone (best of REPEATS after one call): forward, and forward
plus the gradient of sum(output**2) w.r.t. its weights and inputs (`jax.jit` of `jax.grad`
on JAX, autograd on torch). Prints one line per layer and writes JSON.

    KERAS_BACKEND=jax python benchmarks/layer_profile.py hssdct small 2 > profile.txt
"""

# ruff: noqa: B023 - every closure is called in the iteration that defines it
import json
import sys

import keras
import numpy as np

from keras_hsifusion.profiling import benchmark as bm
from keras_hsifusion.profiling.native import best_seconds

name, size = sys.argv[1], sys.argv[2]
reps = int(sys.argv[3]) if len(sys.argv) > 3 else 3
model = bm.build_model(name, "float32")
shapes = bm.input_shapes(model, name, size, 1)
rng = np.random.default_rng(0)
x = {k: rng.random(s, dtype=np.float32) for k, s in shapes.items()}
layers = [l for l in model.layers if not isinstance(l, keras.layers.InputLayer)]
probe = keras.Model(model.inputs, [l.input for l in layers])
ins = probe(x)
B = keras.backend.backend()


def tonp(t):
    return keras.ops.convert_to_numpy(t)


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
