"""Copying weights between models whose layers share names."""


def copy_weights_by_name(source, target, skip_missing_in_source=False):
    """Copy the weights of every weighted layer of ``target`` from the layer of the
    same name in ``source`` (e.g. a ``keras.applications`` model).

    Args:
        source: the ``keras.Model`` holding the weights.
        target: the ``keras.Model`` to fill (a native backbone with matching names).
        skip_missing_in_source: if False, a weighted layer of ``target`` with no
            counterpart in ``source`` is an error.

    Returns:
        The number of layers copied.

    Raises:
        ValueError: a layer is missing or a weight shape differs; the message
        names the layer.
    """
    src = {layer.name: layer for layer in _all_layers(source)}
    copied = 0
    for layer in _all_layers(target):
        if not layer.weights:
            continue
        other = src.get(layer.name)
        if other is None:
            if skip_missing_in_source:
                continue
            raise ValueError(f"copy_weights_by_name: layer {layer.name!r} of {target.name!r} has "
                             f"no counterpart in {source.name!r}.")
        theirs = other.get_weights()
        mine = layer.get_weights()
        same = len(theirs) == len(mine) and all(
            a.shape == b.shape for a, b in zip(theirs, mine, strict=True)
        )
        if not same:
            raise ValueError(
                f"copy_weights_by_name: layer {layer.name!r} has weights of shapes "
                f"{[w.shape for w in mine]} but the source has {[w.shape for w in theirs]}."
            )
        layer.set_weights(theirs)
        copied += 1
    return copied


def _all_layers(model):
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        else:
            yield layer
