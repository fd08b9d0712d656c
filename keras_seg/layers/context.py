"""The context module of Yu & Koltun (2016, "Multi-Scale Context Aggregation by
Dilated Convolutions", ICLR), with the paper's identity initialization."""

import keras
import numpy as np

from keras_seg.layers.atrous import Conv2D

# (kernel, dilation, width factor of the large module, ReLU) of the 8 layers (Table 1)
_LAYERS = (
    (3, 1, 2, True),
    (3, 1, 2, True),
    (3, 2, 4, True),
    (3, 4, 8, True),
    (3, 8, 16, True),
    (3, 16, 32, True),
    (3, 1, 32, True),
    (1, 1, 1, False),
)
_VARIANTS = ("basic", "large")


def context_module_widths(channels, variant="basic"):
    """Output widths of the 8 layers of the context module for ``channels`` = C.

    ``basic``: C everywhere; ``large``: 2C, 2C, 4C, 8C, 16C, 32C, 32C, C (Table 1).
    """
    if variant not in _VARIANTS:
        raise ValueError(f"ContextModule: variant must be one of {_VARIANTS}, got {variant!r}.")
    if variant == "basic":
        return [channels] * len(_LAYERS)
    return [channels * factor for _, _, factor, _ in _LAYERS]


def identity_kernel(kernel_size, c_in, c_out, channels):
    """The paper's (grouped) identity initialization of one context layer.

    Yu & Koltun 2016, Sec. 3: ``k^b(t, a) = C / c_out`` if ``t`` is the kernel
    centre and ``floor(a C / c_in) == floor(b C / c_out)``, else 0 (the caller
    adds the noise ``eps``). With ``c_in == c_out == C`` this is the identity.

    Args:
        kernel_size: spatial size ``k`` (odd).
        c_in, c_out: input and output widths (multiples of ``channels``).
        channels: ``C``, the width of the module's input and output.

    Returns:
        float32 array ``(k, k, c_in, c_out)``.
    """
    kernel = np.zeros((kernel_size, kernel_size, c_in, c_out), "float32")
    a = np.arange(c_in)[:, None]
    b = np.arange(c_out)[None, :]
    same_group = (a * channels) // c_in == (b * channels) // c_out
    centre = kernel_size // 2
    kernel[centre, centre] = np.where(same_group, channels / c_out, 0.0)
    return kernel


@keras.saving.register_keras_serializable(package="keras_seg")
class ContextModule(keras.layers.Layer):
    """Context aggregation module (Yu & Koltun 2016, Table 1).

    Eight layers: seven 3x3 convolutions with dilations 1, 1, 2, 4, 8, 16, 1,
    each followed by ReLU, then a 1x1 convolution (no ReLU). ``"basic"`` keeps
    C channels in every layer; ``"large"`` widens them to 2C, 2C, 4C, 8C, 16C,
    32C, 32C and back to C. Receptive field 67x67. Padding is ``"same"``, so
    the spatial size is kept.

    Identity initialization (paper Sec. 3): every kernel is zero except its
    centre tap, set so that each layer passes its input through; biases are
    zero. So a freshly built basic module returns a non-negative input
    unchanged. The large module uses the paper's grouped identity (input
    channel ``a`` and output channel ``b`` connected with weight ``C / c_out``
    when ``floor(aC/c_in) == floor(bC/c_out)``) plus Gaussian noise of standard
    deviation ``noise_stddev`` everywhere, which breaks the symmetry between
    the copies of a channel; it is then the identity up to that noise.

    Args:
        variant: ``"basic"`` or ``"large"``.
        noise_stddev: standard deviation of the noise added to every kernel
            entry at initialization; None means 0 for ``"basic"`` and ``1e-3``
            for ``"large"`` (the paper only asks ``sigma << C / c_out``).
        seed: int seed for the noise (None: Keras' global seed).

    Input shape: ``(batch, H, W, C)`` (C known; the paper feeds the class
    scores of the front end, C = number of classes).
    Output shape: ``(batch, H, W, C)``.
    """

    def __init__(self, variant="basic", noise_stddev=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if variant not in _VARIANTS:
            raise ValueError(f"ContextModule: variant must be one of {_VARIANTS}, got "
                             f"{variant!r}.")
        if noise_stddev is not None and float(noise_stddev) < 0:
            raise ValueError(f"ContextModule: noise_stddev must be >= 0, got {noise_stddev}.")
        self.variant = variant
        self.noise_stddev = None if noise_stddev is None else float(noise_stddev)
        self.seed = seed
        self.convs = []

    def _noise(self):
        if self.noise_stddev is not None:
            return self.noise_stddev
        return 0.0 if self.variant == "basic" else 1e-3

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("ContextModule: the channel count of the input must be known.")
        widths = context_module_widths(int(channels), self.variant)
        c_in = int(channels)
        self.convs = []
        noise = self._noise()
        for i, ((kernel, dilation, _, relu), width) in enumerate(
                zip(_LAYERS, widths, strict=True)):
            conv = Conv2D(
                width, kernel, padding="same", dilation_rate=dilation,
                activation="relu" if relu else None, dtype=self.dtype_policy,
                name=f"ctx_conv{i + 1}")
            conv.build((None, None, None, c_in))
            value = identity_kernel(kernel, c_in, width, int(channels))
            if noise > 0:
                seed = None if self.seed is None else int(self.seed) + i
                value = value + keras.ops.convert_to_numpy(
                    keras.random.normal(value.shape, stddev=noise, seed=seed))
            conv.kernel.assign(value)
            conv.bias.assign(np.zeros((width,), "float32"))
            self.convs.append(conv)
            c_in = width

    def call(self, x):
        for conv in self.convs:
            x = conv(x)
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "variant": self.variant,
                "noise_stddev": self.noise_stddev, "seed": self.seed}
