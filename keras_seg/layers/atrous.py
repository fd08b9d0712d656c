"""``AtrousConv2D``: a ``Conv2D`` whose dilated convolution takes the fastest correct path."""

import keras

from keras_seg import ops as seg_ops


@keras.saving.register_keras_serializable(package="keras_seg")
class AtrousConv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` computing its stride-1 convolution with
    :func:`keras_seg.ops.atrous_conv`.

    The atrous (dilated) convolutions of DeepLab (Chen et al. 2017, "Rethinking Atrous
    Convolution for Semantic Image Segmentation") and of dilated ResNets: the same
    arguments, weights (``kernel`` ``(kh, kw, C, filters)``, ``bias``) and numbers as
    ``Conv2D``, but the convolution avoids two slow paths: TensorFlow's space-to-batch
    form of any dilated convolution on CPU, and the taps of a rate larger than the
    feature map, which only ever see zero padding (see :func:`keras_seg.ops.atrous_conv`).
    Strided or grouped convolutions, and ``channels_first``, use ``Conv2D``'s own path.

    Args: those of ``keras.layers.Conv2D``.

    Input shape: ``(batch, H, W, C)``. Output shape: ``(batch, H', W', filters)``, as
    ``Conv2D``.
    """

    def convolution_op(self, inputs, kernel):
        if (tuple(self.strides) != (1, 1) or self.groups != 1
                or self.data_format != "channels_last"):
            return super().convolution_op(inputs, kernel)
        return seg_ops.atrous_conv(inputs, kernel, tuple(self.dilation_rate), self.padding)
