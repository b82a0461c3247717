"""The pre-norm transformer stack shared by MSST-Net's SpeT and SpaT."""

from keras import ops

from keras_hsifusion.layers._utils import SameShapeLayer, dense, layer_norm
from keras_hsifusion.layers.core import Dense
from keras_hsifusion.utils.validation import check_int


class TokenTransformer(SameShapeLayer):
    """`num_layers` x (LayerNorm -> attention -> residual -> LayerNorm -> MLP -> residual).

    The MLP is the official `ConvMlp`: 1x1 conv to `mlp_ratio * D`, exact GELU, 1x1 conv back
    (1x1 convs are `Dense` layers on the channel axis). Subclasses define `_attend`.
    """

    _CONFIG = ("heads", "num_layers", "mlp_ratio")

    def __init__(self, heads=4, num_layers=4, mlp_ratio=4, **kwargs):
        super().__init__(**kwargs)
        check_int("heads", heads)
        check_int("num_layers", num_layers)
        check_int("mlp_ratio", mlp_ratio)
        self.heads = heads
        self.num_layers = num_layers
        self.mlp_ratio = mlp_ratio

    def _check_dim(self, dim):
        pass

    def build(self, input_shape):
        dim = input_shape[-1]
        if dim is None:
            raise ValueError(
                f"{type(self).__name__} needs a known channel count. Received: "
                f"input_shape={input_shape}"
            )
        self._check_dim(dim)
        self.dim = dim
        dt = self.dtype_policy
        self.norm1, self.qkv, self.proj, self.norm2, self.fc1, self.fc2 = [], [], [], [], [], []
        for i in range(self.num_layers):
            self.norm1.append(layer_norm(f"norm1_{i}", dt))
            self.qkv.append(dense(3 * dim, f"qkv_{i}", dt))
            self.proj.append(dense(dim, f"proj_{i}", dt))
            self.norm2.append(layer_norm(f"norm2_{i}", dt))
            # torch nn.GELU is the exact (erf) GELU, which the "gelu" string gives.
            self.fc1.append(
                Dense(self.mlp_ratio * dim, activation="gelu", name=f"fc1_{i}", dtype=dt)
            )
            self.fc2.append(dense(dim, f"fc2_{i}", dt))
        for i in range(self.num_layers):
            self.norm1[i].build(input_shape)
            self.qkv[i].build(input_shape)
            self.proj[i].build(input_shape)
            self.norm2[i].build(input_shape)
            self.fc1[i].build(input_shape)
            self.fc2[i].build((*input_shape[:-1], self.mlp_ratio * dim))

    def call(self, x):
        for i in range(self.num_layers):
            shape = ops.shape(x)
            b, n = shape[0], shape[1] * shape[2]
            qkv = ops.reshape(self.qkv[i](self.norm1[i](x)), (b, n, 3 * self.dim))
            y = self.proj[i](self._attend(qkv, b, n))
            x = x + ops.reshape(y, ops.shape(x))
            x = x + self.fc2[i](self.fc1[i](self.norm2[i](x)))
        return x
