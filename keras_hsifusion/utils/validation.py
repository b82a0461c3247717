"""Argument checks shared by every module: each error names the argument and the value."""

import math

import keras

__all__ = [
    "check_choice",
    "check_class_spec",
    "check_int",
    "check_keys",
    "check_number",
    "check_optimizer",
    "check_pair",
    "check_schedule",
    "lcm",
]


def check_int(name, value, minimum=1, allow_none=False):
    """Raises a `ValueError` unless `value` is an int (not a bool) `>= minimum`."""
    if value is None and allow_none:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}. Received: {name}={value!r}")
    return value


def check_number(name, value, allow_zero=False):
    """Raises a `ValueError` unless `value` is a real number (not a bool) `> 0` (`>= 0` with
    `allow_zero`)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (ok and (value > 0 or (allow_zero and value == 0))):
        what = "non-negative" if allow_zero else "positive"
        raise ValueError(f"`{name}` must be a {what} number. Received: {name}={value!r}")
    return value


def check_pair(name, value):
    """A pair of positive ints as a list, or a `ValueError` naming `name`."""
    try:
        pair = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        pair = ()
    if len(pair) != 2 or min(pair) < 1:
        raise ValueError(f"`{name}` must be a pair of positive ints. Received: {name}={value!r}")
    return list(pair)


def check_choice(name, value, choices):
    """Raises a `ValueError` unless `value` is one of `choices`."""
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {tuple(choices)}. Received: {name}={value!r}")
    return value


def check_keys(section, given, allowed):
    """Raises a `ValueError` naming the unknown keys of the dict `given`."""
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ValueError(
            f"Unknown key(s) {unknown} in `{section}`. Allowed: {sorted(allowed)}. "
            f"Received: {section}={given!r}"
        )


def lcm(*values):
    """Least common multiple of positive ints."""
    out = 1
    for v in values:
        out = out * v // math.gcd(out, v)
    return out


def check_class_spec(section, spec):
    """A `{"class": name, **arguments}` dict from a name or such a dict (a copy)."""
    if isinstance(spec, str):
        return {"class": spec}
    if not isinstance(spec, dict) or not isinstance(spec.get("class"), str):
        raise ValueError(
            f'`{section}` must be a name or a dict with a "class" name. Received: '
            f"{section}={spec!r}"
        )
    return dict(spec)


def check_optimizer(section, spec):
    """A Keras optimizer spec (`{"class": "Adam", "learning_rate": 1e-3}`), checked by Keras."""
    spec = check_class_spec(section, spec)
    args = {k: v for k, v in spec.items() if k != "class"}
    try:
        keras.optimizers.get({"class_name": spec["class"], "config": args})
    except (ValueError, TypeError) as e:
        raise ValueError(f"Invalid `{section}`: {e}. Received: {section}={spec!r}") from e
    return spec


def check_schedule(section, spec):
    """None, `{"class": "cosine", "alpha": a}` or `{"class": "multistep", "milestones":
    [epochs...], "gamma": g}`, with the defaults filled in (alpha 0, gamma 0.1)."""
    if spec is None:
        return None
    spec = check_class_spec(section, spec)
    kind = spec["class"]
    if kind == "cosine":
        check_keys(section, spec, {"class", "alpha"})
        alpha = spec.setdefault("alpha", 0.0)
        if not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
            raise ValueError(f"`{section}.alpha` must be in [0, 1]. Received: alpha={alpha!r}")
    elif kind == "multistep":
        check_keys(section, spec, {"class", "milestones", "gamma"})
        milestones = spec.get("milestones")
        if (
            not isinstance(milestones, (list, tuple))
            or not milestones
            or any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in milestones)
            or list(milestones) != sorted(set(milestones))
        ):
            raise ValueError(
                f"`{section}.milestones` must be increasing positive epoch numbers. "
                f"Received: milestones={milestones!r}"
            )
        spec["milestones"] = list(milestones)
        spec.setdefault("gamma", 0.1)
    else:
        raise ValueError(
            f"`{section}.class` must be 'cosine' or 'multistep'. Received: class={kind!r}"
        )
    return spec
