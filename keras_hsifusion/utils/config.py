"""`ConstructorConfig`: `get_config`/`from_config` of the zoo's functional models.

A functional `keras.Model` subclass builds its graph in `__init__` from constructor arguments;
its config is those arguments. Rather than each model listing them twice (attributes, then
`get_config`), the model calls `self._keep_config(locals())` once after `super().__init__`:
every named constructor argument but `dtype` and `name` becomes an attribute of that name
(with the value it had at that point, i.e. after validation) and a key of `get_config`, next to
`name`, `trainable` and `dtype`. Tuples are written as lists (JSON).
"""

import inspect

import keras

__all__ = ["ConstructorConfig"]


def _plain(value):
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


class ConstructorConfig:
    """Mixin for functional `keras.Model` subclasses whose config is their constructor's."""

    @classmethod
    def _config_keys(cls):
        params = inspect.signature(cls.__init__).parameters.values()
        skip = ("self", "dtype", "name")
        return [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD and p.name not in skip]

    def _keep_config(self, arguments):
        self.dtype_policy = arguments["dtype"]  # keras' Functional.__init__ drops `dtype`
        for key in self._config_keys():
            setattr(self, key, arguments[key])

    def get_config(self):
        config = {key: _plain(getattr(self, key)) for key in self._config_keys()}
        config.update(
            name=self.name,
            trainable=self.trainable,
            dtype=keras.dtype_policies.serialize(self.dtype_policy),
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        return cls(**config)
