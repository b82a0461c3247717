"""MSST-Net's training recipe: the MBAE/MPAE pretraining stages before the fine-tuning.

The official recipe (Jia, Min, Fu, Information Fusion 2023) first trains three masked band
autoencoders (`MBAE`, band embeddings of width D, D/2, 2D) on LR-HSI patches and three
masked patch autoencoders (`MPAE`, patches p, p/2, 2p) on HR-MSI patches, then fine-tunes
`MSSTNet` with each scale's pretrained encoder (`MSSTNet.load_pretrained_encoders`). The
generic runner (`keras_hsifusion.training.run_experiment`) reaches it through
`ModelSpec.recipe`; each stage trains, checkpoints and resumes in its own sub-folder of the
run (`mbae_<D>`, `mpae_<p>`).

Config key `pretrain`: None (no pretraining, the default) or `{"mbae": {...}, "mpae":
{...}}`, each None (skipped) or a dict with (defaults in `DEFAULT_PRETRAIN`) `epochs`,
`steps_per_epoch` (None: the whole `patches_per_epoch`), `mask_ratio` (None: the
autoencoder's default), `decoder_num_layers`, `optimizer` and `schedule` (as the config's
own `optimizer` and `schedule`).
"""

import copy
import functools

import keras

from keras_hsifusion.applications.msst_net.pretrainers import MBAE, MPAE
from keras_hsifusion.utils.validation import (
    check_int,
    check_keys,
    check_optimizer,
    check_schedule,
)

__all__ = ["DEFAULT_PRETRAIN", "RECIPE", "MSSTNetRecipe"]

DEFAULT_PRETRAIN = {
    "epochs": 5,
    "steps_per_epoch": None,
    "mask_ratio": None,
    "decoder_num_layers": 2,
    "optimizer": {"class": "Adam", "learning_rate": 1e-3},
    "schedule": None,
}


def _check_stage(stage, spec):
    if not isinstance(spec, dict):
        raise ValueError(f"`pretrain.{stage}` must be a dict. Received: {spec!r}")
    check_keys(f"pretrain.{stage}", spec, DEFAULT_PRETRAIN)
    spec = {**copy.deepcopy(DEFAULT_PRETRAIN), **spec}
    check_int(f"pretrain.{stage}.epochs", spec["epochs"])
    check_int(f"pretrain.{stage}.steps_per_epoch", spec["steps_per_epoch"], 1, True)
    check_int(f"pretrain.{stage}.decoder_num_layers", spec["decoder_num_layers"])
    ratio = spec["mask_ratio"]
    if ratio is not None and (
        isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio < 1
    ):
        raise ValueError(f"`pretrain.{stage}.mask_ratio` must be in [0, 1). Received: {ratio!r}")
    spec["optimizer"] = check_optimizer(f"pretrain.{stage}.optimizer", spec["optimizer"])
    spec["schedule"] = check_schedule(f"pretrain.{stage}.schedule", spec["schedule"])
    return spec


def _stages(kind, net, spec, seed):
    # (sub-folder, constructor) of the three autoencoders of one kind, from the MSSTNet `net`.
    common = {"decoder_num_layers": spec["decoder_num_layers"], "seed": seed}
    if spec["mask_ratio"] is not None:
        common["mask_ratio"] = spec["mask_ratio"]
    if kind == "mbae":
        d = net.hsi_embed_dim
        kwargs = {"heads": net.hsi_heads, "num_layers": net.hsi_num_layers}
        kwargs["reference_size"] = net.reference_size
        return [
            (f"mbae_{dim}", functools.partial(MBAE, net.hsi_bands, dim, **kwargs, **common))
            for dim in (d, d // 2, 2 * d)
        ]
    p = net.patch_size
    kwargs = {"heads": net.msi_heads, "num_layers": net.msi_num_layers}
    kwargs["reference_size"] = [net.scale * s for s in net.reference_size]
    return [
        (
            f"mpae_{size}",
            functools.partial(MPAE, net.msi_bands, net.msi_embed_dim, size, **kwargs, **common),
        )
        for size in (p, p // 2, 2 * p)
    ]


class MSSTNetRecipe:
    """The `ModelSpec.recipe` of `MSSTNet`: the `pretrain` config key and its stages.

    Attributes:
        config_keys: `{"pretrain": None}`, the config key this recipe adds and its default.
    """

    config_keys = {"pretrain": None}

    def validate(self, config):
        """Checks `config["pretrain"]` and fills in its defaults; returns the config."""
        pretrain = config.get("pretrain")
        if pretrain is None:
            return config
        if not isinstance(pretrain, dict):
            raise ValueError(f"`pretrain` must be a dict. Received: pretrain={pretrain!r}")
        check_keys("pretrain", pretrain, {"mbae", "mpae"})
        config["pretrain"] = {
            stage: None if pretrain.get(stage) is None else _check_stage(stage, pretrain[stage])
            for stage in ("mbae", "mpae")
        }
        return config

    def prepare(self, context):
        """Trains the MBAEs and MPAEs (each resumable) of the config's MSSTNet.

        Args:
            context: the runner's `keras_hsifusion.training.RecipeContext`.

        Returns:
            None without `pretrain`, else a function that loads the pretrained encoders
            into a freshly built MSSTNet.
        """
        pretrain = context.config["pretrain"]
        if pretrain is None:
            return None
        net = context.build_model()
        seed = context.config["seed"]
        paths = {"mbae": None, "mpae": None}
        for kind, key in (("mbae", "lr_hsi"), ("mpae", "hr_msi")):
            spec = pretrain[kind]
            if spec is None:
                continue
            paths[kind] = []
            for name, make in _stages(kind, net, spec, seed):
                train = context.autoencoder_data(key)
                steps = spec["steps_per_epoch"] or len(train)

                def build(make=make, spec=spec, steps=steps):
                    keras.utils.set_random_seed(seed)
                    model = make()
                    context.compile(
                        model, "mse", spec["optimizer"], spec["schedule"], steps, spec["epochs"]
                    )
                    return model

                context.log(f"=== pretraining {name} ({spec['epochs']} epochs)")
                paths[kind].append(
                    context.fit_stage(name, build, train, spec["epochs"], spec["steps_per_epoch"])
                )
        del net

        def load_pretrained_encoders(model):
            model.load_pretrained_encoders(mbae=paths["mbae"], mpae=paths["mpae"])

        return load_pretrained_encoders


RECIPE = MSSTNetRecipe()
