"""Argument checks shared by the custom layers."""


def check_positive_int(layer, arg, value):
    """Raise a ValueError naming ``layer`` and ``arg`` unless ``value`` is an int >= 1."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{layer}: `{arg}` must be a positive int, got {value!r}.")


def check_positive_int_tuple(layer, arg, value, example):
    """Return ``value`` as a tuple, or raise a ValueError unless it is a non-empty
    sequence of ints >= 1 (``example`` is shown in the message)."""
    try:
        value = tuple(value)
    except TypeError:
        value = None
    if not value or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in value):
        raise ValueError(f"{layer}: {arg} must be a non-empty tuple of positive ints, e.g. "
                         f"{example}; got {value!r}.")
    return value
