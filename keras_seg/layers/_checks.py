"""Argument checks shared by the custom layers."""


def check_positive_int(layer, arg, value):
    """Raise a ValueError naming ``layer`` and ``arg`` unless ``value`` is an int >= 1."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{layer}: `{arg}` must be a positive int, got {value!r}.")
