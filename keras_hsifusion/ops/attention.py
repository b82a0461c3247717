"""Global multi-head attention, query-chunked on JAX and TensorFlow for long sequences."""

import keras
from keras import ops

# Chunk the queries so that one chunk's logits (per batch item and head) take about 4 MB:
# they stay in cache between the two matmuls and the softmax instead of streaming through
# memory. XLA CPU materialises the whole (heads, n, n) logit tensor and runs the exp over it
# memory-bound; at MSST-Net's 4096 patch tokens this chunking is ~3x faster on JAX (same
# numbers: each query row's softmax is computed whole).
_CHUNK_LOGITS = 1 << 20
# TensorFlow: logits per query chunk over all heads (128 MB).
_TF_CHUNK_LOGITS = 1 << 25
# Below this many logits in all (16 MB), one fused call is as fast.
_MIN_CHUNKED_LOGITS = 1 << 22


def attention(q, k, v, scale):
    """`softmax(q k^T * scale) v` per head, equal to `keras.ops.dot_product_attention`.

    Args:
        q: queries `(B, Nq, heads, d)`.
        k: keys `(B, Nk, heads, d)`.
        v: values `(B, Nk, heads, dv)`.
        scale: logit scale.

    Returns:
        `(B, Nq, heads, dv)`.
    """
    b, n_q, heads, d = q.shape
    n_k, dv = k.shape[1], v.shape[-1]
    backend = keras.backend.backend()
    long = None not in (b, n_q, heads, n_k) and b * heads * n_q * n_k >= _MIN_CHUNKED_LOGITS
    if long and backend == "tensorflow":
        # Eager TensorFlow: a Python loop over query chunks, every head at once (its
        # `ops.map` runs the chunk function element by element, ~40 % slower here).
        chunk = max(1, _TF_CHUNK_LOGITS // (b * heads * n_k))
        parts = [
            ops.dot_product_attention(q[:, i : i + chunk], k, v, scale=scale)
            for i in range(0, n_q, chunk)
        ]
        return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=1)
    # Chunked on JAX (below) and TensorFlow (above): torch has a fused CPU kernel behind
    # `dot_product_attention`. TensorFlow's materialises the logits too: the MSST-Net preset's
    # 512^2 fusion peaked at 5.9 GiB RSS with it, 2.5 GiB in chunks of 2^25 logits, in the
    # same time (10.3 / 10.4 s, two threads; docs/fuse.md).
    if not (long and backend == "jax"):
        return ops.dot_product_attention(q, k, v, scale=scale)

    chunk = max(1, min(n_q, _CHUNK_LOGITS // n_k))
    n_chunks = -(-n_q // chunk)
    pad = n_chunks * chunk - n_q
    bh = b * heads
    qh = ops.transpose(q, (0, 2, 1, 3))
    if pad:
        qh = ops.pad(qh, ((0, 0), (0, 0), (0, pad), (0, 0)))
    qh = ops.reshape(qh, (bh, n_chunks, chunk, d))
    kh = ops.reshape(ops.transpose(k, (0, 2, 3, 1)), (bh, d, n_k))
    vh = ops.reshape(ops.transpose(v, (0, 2, 1, 3)), (bh, n_k, dv))
    # Reduced-precision inputs: logits and softmax in float32, as the fused kernels do.
    dtype = keras.backend.standardize_dtype(q.dtype)
    wide = "float32" if dtype in ("float16", "bfloat16") else dtype

    def one_head(item):
        q_chunks, k_head, v_head = item
        k_head = ops.cast(k_head, wide)

        def one_chunk(q_chunk):
            logits = ops.matmul(ops.cast(q_chunk, wide), k_head) * scale
            return ops.matmul(ops.cast(ops.softmax(logits, axis=-1), v.dtype), v_head)

        return ops.map(one_chunk, q_chunks)

    out = ops.map(one_head, (qh, kh, vh))  # (bh, n_chunks, chunk, dv)
    out = ops.reshape(out, (b, heads, n_chunks * chunk, dv))[:, :, :n_q]
    return ops.transpose(out, (0, 2, 1, 3))
