"""Deep supervision: models with named outputs train with ``model.fit(images, masks)``."""

import os

import keras
import numpy as np
import pytest
from keras import layers
from support.tiny_pyramid import tiny_pyramid

import keras_seg
from keras_seg.applications import GFRNET_LOSS_WEIGHTS, PSPNet
from keras_seg.losses import DiceLoss, SegmentationCrossEntropy
from keras_seg.metrics import MeanIoU
from keras_seg.model_base import SegmentationModel, model_geometry

C = 3
WEIGHTS = {"logits": 1.0, "stage1": 0.5, "coarse": 0.25}
rng = np.random.default_rng(0)
X = rng.uniform(size=(4, 16, 12, 3)).astype("float32")
Y = (X[..., 0] * C).astype("int32").clip(0, C - 1)
Y[:, :2] = 255


def tiny_deep_model():
    """G-FRNet-like: a full-resolution main output and two coarser side outputs."""
    inputs = keras.Input((None, None, 3))
    x = layers.Conv2D(6, 3, padding="same", activation="relu")(inputs)
    s2 = layers.Conv2D(6, 3, strides=2, padding="same", activation="relu")(x)
    s4 = layers.Conv2D(6, 3, strides=2, padding="same", activation="relu")(s2)
    outputs = {"logits": layers.Conv2D(C, 1, name="logits")(x),
               "stage1": layers.Conv2D(C, 1, name="stage1")(s2),
               "coarse": layers.Conv2D(C, 1, name="coarse")(s4)}
    return SegmentationModel(inputs, outputs, name="tiny_deep",
                             loss_weights={"stage1": 0.5, "coarse": 0.25})


def value(x):
    return float(keras.ops.convert_to_numpy(x))


def to_numpy(outputs):
    return {k: keras.ops.convert_to_numpy(v) for k, v in outputs.items()}


def by_hand(loss, predictions, weights, y=Y, sample_weight=None):
    return sum(w * value(loss(y, predictions[k], sample_weight=sample_weight))
               for k, w in weights.items())


def test_fit_on_one_label_map_and_save_load(tmp_path):
    model = tiny_deep_model()
    assert model.default_loss_weights == WEIGHTS
    loss = SegmentationCrossEntropy()
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss=loss,
                  metrics=[MeanIoU(C)])
    history = model.fit(X, Y, batch_size=4, epochs=3, verbose=0, validation_data=(X, Y))
    logs = history.history
    assert logs["loss"][-1] < logs["loss"][0], logs["loss"]
    assert {"mean_iou", "val_mean_iou", "logits_loss", "stage1_loss", "coarse_loss"} <= set(logs)
    assert not any(k.endswith("_mean_iou") and k != "val_mean_iou" for k in logs)  # main only

    # total loss of one batch = sum_k w_k * loss(y, output_k), labels resized per output
    predictions = to_numpy(model(X, training=False))
    assert predictions["coarse"].shape == (4, 4, 3, C)
    result = model.evaluate(X, Y, batch_size=4, verbose=0, return_dict=True)
    assert result["loss"] == pytest.approx(by_hand(loss, predictions, WEIGHTS), rel=1e-5)
    assert result["stage1_loss"] == pytest.approx(value(loss(Y, predictions["stage1"])),
                                                  rel=1e-5)
    metric = MeanIoU(C)
    metric.update_state(Y, predictions["logits"])
    assert result["mean_iou"] == pytest.approx(value(metric.result()), rel=1e-5)

    path = os.path.join(str(tmp_path), "deep.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)  # no custom_objects
    assert type(reloaded) is SegmentationModel
    assert reloaded.default_loss_weights == WEIGHTS
    after = to_numpy(reloaded(X, training=False))
    for key in WEIGHTS:
        np.testing.assert_allclose(after[key], predictions[key], rtol=1e-5, atol=1e-5)
    # the compile setup (loss and weights) comes back with the model
    assert reloaded.compiled
    assert value(reloaded.compute_loss(X, Y, after)) == pytest.approx(result["loss"], rel=1e-5)
    inference = keras_seg.inference_model(reloaded)
    assert not isinstance(inference.output, dict)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(inference(X, training=False)),
                               after["logits"], rtol=1e-5, atol=1e-5)


def test_compile_options_eagerly():
    model = tiny_deep_model()
    predictions = model(X)
    ce, dice = SegmentationCrossEntropy(), DiceLoss()
    model.compile(loss=ce)  # the stored weights
    assert value(model.compute_loss(X, Y, predictions)) == pytest.approx(
        by_hand(ce, predictions, WEIGHTS), rel=1e-5)
    # one per-pixel sample weight reaches every output's loss
    sw = rng.uniform(0.5, 3.0, Y.shape).astype("float32")
    assert value(model.compute_loss(X, Y, predictions, sample_weight=sw)) == pytest.approx(
        by_hand(ce, predictions, WEIGHTS, sample_weight=sw), rel=1e-5)
    only_main = {"logits": 1.0, "stage1": 0.0, "coarse": 0.0}
    model.compile(loss=ce, loss_weights=only_main)  # explicit weights win
    assert value(model.compute_loss(X, Y, predictions)) == pytest.approx(
        value(ce(Y, predictions["logits"])), rel=1e-5)
    # a dict of losses: one per output, weights still the stored ones
    model.compile(loss={"logits": ce, "stage1": dice, "coarse": ce})
    expected = value(ce(Y, predictions["logits"])) + 0.5 * value(dice(Y, predictions["stage1"]))
    expected += 0.25 * value(ce(Y, predictions["coarse"]))
    assert value(model.compute_loss(X, Y, predictions)) == pytest.approx(expected, rel=1e-5)
    # a dict y keyed by output is used as given (here: the main map zeroed out)
    ys = {"logits": np.full_like(Y, 255), "stage1": Y, "coarse": Y}
    assert value(model.compute_loss(X, ys, predictions)) == pytest.approx(
        expected - value(ce(Y, predictions["logits"])), rel=1e-5)


def test_builders_return_a_segmentation_model_with_the_paper_weights():
    # (the shared harness checks that PSPNet aux, G-FRNet and U-Net deep supervision
    # are SegmentationModels and fits them on one label map; here: the stored weights
    # and how they combine the outputs' losses)
    model = PSPNet(C, backbone=tiny_pyramid(8), filters=8, aux=True, aux_filters=8)
    assert isinstance(model, SegmentationModel)
    assert model.default_loss_weights == {"logits": 1.0, "aux": 0.4}
    loss = SegmentationCrossEntropy()
    model.compile(loss=loss)
    predictions = {"logits": rng.normal(size=(4, 16, 12, C)).astype("float32"),
                   "aux": rng.normal(size=(4, 8, 6, C)).astype("float32")}
    assert value(model.compute_loss(X, Y, predictions)) == pytest.approx(
        value(loss(Y, predictions["logits"])) + 0.4 * value(loss(Y, predictions["aux"])),
        rel=1e-5)
    assert GFRNET_LOSS_WEIGHTS == {k: 1.0 for k in ("logits", "stage1", "stage2", "stage3",
                                                    "stage4", "coarse")}


def test_single_output_model_trains_as_keras_model_and_keeps_its_geometry(tmp_path):
    inputs = keras.Input((None, None, 3))
    logits = layers.Conv2D(C, 1, dtype="float32")(inputs)
    model = SegmentationModel(inputs, logits, output_stride=4, padding="same")
    plain = keras.Model(inputs, logits)
    assert model_geometry(model) == {"output_stride": 4, "padding": "same"}
    assert model_geometry(plain) is None
    loss = SegmentationCrossEntropy()
    model.compile(optimizer="sgd", loss=loss, metrics=[keras_seg.metrics.MeanIoU(C)])
    logs = model.evaluate(X, Y, return_dict=True, verbose=0)
    assert logs["loss"] == pytest.approx(value(loss(Y, plain.predict(X, verbose=0))), rel=1e-5)
    assert "mean_iou" in logs
    path = str(tmp_path / "single.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert model_geometry(loaded) == {"output_stride": 4, "padding": "same"}
    assert keras_seg.inference_model(loaded) is loaded


def test_training_matches_keras_model_and_releases_the_gradients():
    """The same weights as a plain keras.Model after two steps (momentum: the optimizer
    state, not the released gradients, carries over); on PyTorch no gradient is held
    between steps (Keras' trainer would keep them until after the next forward pass)."""
    inputs = keras.Input((None, None, 3))
    logits = layers.Conv2D(C, 3, padding="same", dtype="float32")(inputs)
    models = [SegmentationModel(inputs, logits), keras.Model(inputs, logits)]
    start = models[0].get_weights()
    trained = []
    for model in models:
        model.set_weights(start)
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                      loss=SegmentationCrossEntropy())
        for _ in range(2):
            model.train_on_batch(X, Y)
        trained.append(model.get_weights())
        if keras.backend.backend() == "torch" and isinstance(model, SegmentationModel):
            assert all(v.value.grad is None for v in model.trainable_variables)
    for ours, plain in zip(*trained, strict=True):
        np.testing.assert_allclose(ours, plain, rtol=1e-6, atol=1e-7)
    if keras.backend.backend() == "torch":  # what the release changes: Keras keeps them
        assert all(v.value.grad is not None for v in models[1].trainable_variables)


def test_errors():
    inputs = keras.Input((None, None, 3))
    logits = layers.Conv2D(C, 1)(inputs)
    with pytest.raises(ValueError, match="a dict of outputs needs a 'logits' entry"):
        SegmentationModel(inputs, {"main": logits})
    with pytest.raises(ValueError, match="one logits tensor or a dict"):
        SegmentationModel(inputs, [logits, logits])
    with pytest.raises(ValueError, match="loss_weights apply to a dict of outputs"):
        SegmentationModel(inputs, logits, loss_weights={"logits": 1.0})
    with pytest.raises(ValueError, match="output_stride must be a positive int"):
        SegmentationModel(inputs, logits, output_stride=0)
    with pytest.raises(ValueError, match="padding must be one of"):
        SegmentationModel(inputs, logits, padding="reflect")
    with pytest.raises(ValueError, match=r"names \['aux'\], which are not outputs"):
        SegmentationModel(inputs, {"logits": logits}, loss_weights={"aux": 0.4})
    with pytest.raises(ValueError, match="must be >= 0"):
        SegmentationModel(inputs, {"logits": logits}, loss_weights={"logits": -1})
