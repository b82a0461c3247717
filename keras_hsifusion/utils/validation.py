"""Argument checks shared by every module: each error names the argument and the value."""

import math

__all__ = ["check_choice", "check_int", "check_keys", "check_pair", "lcm"]


def check_int(name, value, minimum=1, allow_none=False):
    """Raises a `ValueError` unless `value` is an int (not a bool) `>= minimum`."""
    if value is None and allow_none:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}. Received: {name}={value!r}")
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
