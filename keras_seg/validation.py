"""Argument validators shared by the whole package (builders, backbones, layers, metrics).

Each raises a ``ValueError`` that names who was called (``who``: a model, layer or
function name), the argument, what it got and what it accepts, and returns the value
in canonical form (a tuple, an int) where that helps the caller. Checks that belong to
one function only (a layer's own constraint between two arguments, say) stay with it.
"""

import numbers


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def positive_int(who, arg, value):
    """Return ``int(value)``, or raise unless ``value`` is an int >= 1 (bools refused).

    Args:
        who: name shown first in the message (e.g. ``"ASPP"``).
        arg: argument name.
        value: the value to check.
    """
    if not _is_int(value) or value < 1:
        raise ValueError(f"{who}: {arg} must be a positive int, got {value!r}.")
    return int(value)


def positive_int_tuple(who, arg, value, example, length=None):
    """Return ``value`` as a tuple of ints >= 1, or raise.

    Args:
        who: name shown first in the message.
        arg: argument name.
        value: a non-empty sequence of positive ints.
        example: an example shown in the message, e.g. ``(1, 2, 3, 6)``.
        length: required length (None: any non-empty length).
    """
    try:
        value = tuple(value)
    except TypeError:
        value = None
    bad = not value or any(not _is_int(v) or v < 1 for v in value)
    if bad or (length is not None and len(value) != length):
        size = "a non-empty tuple" if length is None else f"a tuple of {length}"
        raise ValueError(f"{who}: {arg} must be {size} positive ints, e.g. {example}; got "
                         f"{value!r}.")
    return tuple(int(v) for v in value)


def one_of(who, arg, value, allowed):
    """Return ``value``, or raise unless it is one of ``allowed`` (listed in the message)."""
    if value not in allowed:
        raise ValueError(f"{who}: {arg} must be one of {tuple(allowed)}, got {value!r}.")
    return value


def num_classes(who, value):
    """Return ``int(value)``, or raise unless ``value`` is an int >= 1 (2.7 is refused)."""
    if not _is_int(value) or value < 1:
        raise ValueError(f"{who}: num_classes must be a positive int, got {value!r}.")
    return int(value)


def input_shape(who, value):
    """Return ``(H, W, C)`` as a tuple, or raise.

    ``H`` and ``W`` may be None (any size); ``C`` must be a positive int.
    """
    try:
        shape = tuple(value)
    except TypeError:
        shape = None
    if shape is None or len(shape) != 3:
        raise ValueError(f"{who}: input_shape must be (height, width, channels), e.g. "
                         f"(None, None, 3); got {value!r}.")
    if shape[-1] is None or not _is_int(shape[-1]) or shape[-1] < 1:
        raise ValueError(f"{who}: the channel count (last entry of input_shape) must be a "
                         f"positive int, got {value!r}.")
    for side in shape[:2]:
        if side is not None and (not _is_int(side) or side < 1):
            raise ValueError(f"{who}: input_shape sides must be positive ints or None, got "
                             f"{value!r}.")
    return shape


def output_stride(who, value, allowed=(8, 16, 32)):
    """Return ``value``, or raise unless it is one of the ``allowed`` output strides."""
    if not _is_int(value) or value not in allowed:
        raise ValueError(f"{who}: output_stride must be one of {tuple(allowed)}, got "
                         f"{value!r}.")
    return int(value)


def multi_grid(who, value):
    """Return ``value`` as a tuple of positive ints (DeepLab's unit-rate multipliers), or None."""
    if value is None:
        return None
    return positive_int_tuple(who, "multi_grid", value, "(1, 2, 4)")


def pair(who, arg, value):
    """Return ``(h, w)`` from an int or a pair of positive ints, or raise."""
    if _is_int(value):
        value = (value, value)
    try:
        out = tuple(value)
    except TypeError:
        out = ()
    if len(out) != 2 or any(not _is_int(v) or v < 1 for v in out):
        raise ValueError(f"{who}: {arg} must be a positive int or (height, width), got "
                         f"{value!r}.")
    return (int(out[0]), int(out[1]))
