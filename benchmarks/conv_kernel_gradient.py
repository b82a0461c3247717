"""Convolution kernel (filter) gradient on JAX (CPU): XLA's own against `khf.ops.conv`.

For each stride-1 3x3 "same" convolution shape of the zoo models, the best of `--iters`
timed calls (after one compiling call) of, under `jax.jit`:
forward `keras.ops.conv`; its kernel gradient by JAX autodiff (XLA's filter-gradient
convolution); the kernel gradient of `keras_hsifusion.ops.conv.conv2d` (one matmul per
kernel tap); and, for reference, torch's `conv2d` backward-weight kernel (oneDNN) in the same
process. Writes Markdown and JSON next to `--out`.

    KERAS_BACKEND=jax python benchmarks/conv_kernel_gradient.py \
        --out benchmarks/results/jax_conv_kernel_gradient
"""

import argparse
import json
import os
import platform

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_hsifusion.ops.conv import conv2d  # noqa: E402
from keras_hsifusion.profiling.native import best_seconds  # noqa: E402

# (side, in channels, out channels): MSST-Net at 128^2 (small) and 512^2 (default, HR
# branch), HSSDCT at 256^2 (nf 96, 2 nf = 192 -> 96).
SHAPES = [(128, 64, 64), (256, 96, 96), (256, 192, 96), (512, 64, 64)]


def _torch_weight_grad(x, g, k, iters):
    try:
        import torch
    except ImportError:
        return None
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    gt = torch.from_numpy(np.ascontiguousarray(g.transpose(0, 3, 1, 2)))
    shape = (g.shape[-1], x.shape[-1], k, k)

    return best_seconds(lambda: torch.nn.grad.conv2d_weight(xt, shape, gt, padding=k // 2), iters)


def measure(side, cin, cout, iters, k=3):
    rng = np.random.default_rng(0)
    x = rng.random((1, side, side, cin), dtype=np.float32)
    w = rng.random((k, k, cin, cout), dtype=np.float32) - 0.5
    g = rng.random((1, side, side, cout), dtype=np.float32)
    xj, wj, gj = (jax.numpy.asarray(a) for a in (x, w, g))

    def xla(x, w):
        return keras.ops.conv(x, w, 1, "same")

    def ours(x, w):
        return conv2d(x, w, (1, 1), "same")

    forward = jax.jit(xla)

    def kernel_grad(f):
        return jax.jit(lambda x, w, g: jax.vjp(lambda w: f(x, w), w)[1](g)[0])

    grad_xla, grad_ours = kernel_grad(xla), kernel_grad(ours)
    a, b = np.asarray(grad_xla(xj, wj, gj)), np.asarray(grad_ours(xj, wj, gj))
    flops = 2 * side * side * k * k * cin * cout
    row = dict(
        shape=f"{side}x{side}, {cin}->{cout}",
        gflop=flops / 1e9,
        forward_s=best_seconds(lambda: forward(xj, wj), iters),
        kernel_grad_xla_s=best_seconds(lambda: grad_xla(xj, wj, gj), iters),
        kernel_grad_ours_s=best_seconds(lambda: grad_ours(xj, wj, gj), iters),
        kernel_grad_torch_s=_torch_weight_grad(x, g, k, iters),
        max_rel_diff=float(np.max(np.abs(a - b)) / np.max(np.abs(a))),
    )
    print(row, flush=True)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    rows = [measure(*shape, args.iters) for shape in SHAPES]
    meta = dict(
        jax=jax.__version__,
        keras=keras.__version__,
        machine=platform.platform(),
        cpus=os.cpu_count(),
        command="KERAS_BACKEND=jax python benchmarks/conv_kernel_gradient.py --out " + args.out,
    )
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out + ".json", "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)

    def ms(s):
        return "–" if s is None else f"{s * 1e3:.0f} ms"

    def rate(row, key):
        return "–" if row[key] is None else f"{row['gflop'] / row[key]:.0f}"

    lines = [
        "# Convolution kernel gradient on JAX (CPU)",
        "",
        f"Command: `{meta['command']}`",
        "",
        f"jax {meta['jax']}, keras {meta['keras']}, {meta['machine']}, {meta['cpus']} CPUs; "
        "float32, batch 1, 3x3 'same'; best of "
        f"{args.iters} calls; GFLOP/s in brackets.",
        "",
        "| shape | forward | kernel grad, XLA | kernel grad, ours | torch (oneDNN) | ours vs XLA |"
        " max rel diff |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['shape']} | {ms(r['forward_s'])} ({rate(r, 'forward_s')}) "
            f"| {ms(r['kernel_grad_xla_s'])} ({rate(r, 'kernel_grad_xla_s')}) "
            f"| {ms(r['kernel_grad_ours_s'])} ({rate(r, 'kernel_grad_ours_s')}) "
            f"| {ms(r['kernel_grad_torch_s'])} ({rate(r, 'kernel_grad_torch_s')}) "
            f"| {r['kernel_grad_xla_s'] / r['kernel_grad_ours_s']:.2f}x "
            f"| {r['max_rel_diff']:.1e} |"
        )
    with open(args.out + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
