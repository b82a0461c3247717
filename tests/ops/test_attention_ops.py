"""keras_hsifusion.ops.attention: the query-chunked path equals keras.ops.dot_product_attention."""

import keras
import numpy as np
import pytest
from harness import BACKEND, assert_close, gradients

from keras_hsifusion.ops import attention as attention_module
from keras_hsifusion.ops.attention import attention


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunk tiny problems (8 logits per chunk row block) and count the chunked calls."""
    monkeypatch.setattr(attention_module, "_CHUNK_LOGITS", 8 * 12)
    monkeypatch.setattr(attention_module, "_TF_CHUNK_LOGITS", 2 * 3 * 8 * 12)
    monkeypatch.setattr(attention_module, "_MIN_CHUNKED_LOGITS", 1)
    calls = []
    # JAX maps over heads and query chunks; TensorFlow loops over query chunks, one fused
    # attention call each.
    name = "dot_product_attention" if BACKEND == "tensorflow" else "map"
    original = getattr(keras.ops, name)

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(attention_module.ops, name, spy)
    return calls


def _qkv(n_q, n_k, seed=0, heads=3, d=5):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(2, n, heads, d)).astype("float32") for n in (n_q, n_k, n_k)]


@pytest.mark.parametrize("n_q", [24, 29])  # 29: the last chunk is padded
def test_chunked_equals_dot_product_attention(n_q, small_chunks):
    q, k, v = _qkv(n_q, 12)
    out = attention(q, k, v, 0.37)
    calls = len(small_chunks)
    ref = keras.ops.dot_product_attention(q, k, v, scale=0.37)
    assert tuple(out.shape) == (2, n_q, 3, 5)
    assert_close(out, keras.ops.convert_to_numpy(ref), rtol=1e-5)
    # Chunked on JAX (an outer map over heads, an inner one over query chunks) and on
    # TensorFlow (8 queries of 2 x 3 heads per chunk: 3 or 4 calls), not on torch.
    assert calls == {"jax": 2, "tensorflow": -(-n_q // 8)}.get(BACKEND, 0)


def test_chunked_bfloat16_and_gradients(small_chunks):
    q, k, v = _qkv(16, 12, seed=1)
    lo = [keras.ops.cast(t, "bfloat16") for t in (q, k, v)]
    out = attention(*lo, 0.5)
    calls = len(small_chunks)
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    ref = keras.ops.dot_product_attention(q, k, v, scale=0.5)
    assert_close(keras.ops.cast(out, "float32"), keras.ops.convert_to_numpy(ref), rtol=3e-2)

    assert (calls > 0) == (BACKEND in ("jax", "tensorflow"))
    # Gradients through the chunked loop equal those through one fused call.
    x = np.random.default_rng(2).normal(size=(2, 16, 4)).astype("float32")
    target = np.random.default_rng(3).normal(size=(2, 16, 15)).astype("float32")
    models = [_qkv_model(attention), _qkv_model(keras.ops.dot_product_attention)]
    models[1].set_weights(models[0].get_weights())
    ours, ref = (gradients(m, x, target) for m in models)
    assert len(ours) == 2
    for a, b in zip(ours.values(), ref.values(), strict=True):
        assert_close(a, b, rtol=1e-4, what="gradient")


def _qkv_model(attend):
    def fn(t):
        b, n = keras.ops.shape(t)[0], t.shape[1]
        q, k, v = keras.ops.split(keras.ops.reshape(t, (b, n, 3, 3, 5)), 3, axis=2)
        q, k, v = (keras.ops.squeeze(a, 2) for a in (q, k, v))
        return keras.ops.reshape(attend(q, k, v, scale=0.5), (b, n, 15))

    inputs = keras.Input((16, 4), batch_size=2)
    outputs = keras.layers.Lambda(fn)(keras.layers.Dense(45)(inputs))
    return keras.Model(inputs, outputs)
