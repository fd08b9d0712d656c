"""``Conv2D``, ``Conv2DTranspose``, ``AtrousConv2D``, ``AtrousDepthwiseConv2D``,
``AtrousSeparableConv2D``: Keras' convolution layers whose convolution takes the fastest
correct path of :mod:`keras_seg.ops`; same arguments, weights and numbers as the Keras layers."""

import keras
from keras import ops

from keras_seg import ops as seg_ops


@keras.saving.register_keras_serializable(package="keras_seg")
class Conv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` computing its convolution with
    :func:`keras_seg.ops.conv`: on the PyTorch backend without the layout copies of
    ``keras.ops.conv`` (the input made NCHW-contiguous and channels-last again at every
    call, forward and backward); the other backends run ``keras.ops.conv``.

    The plain convolution of every keras-seg model (LeCun et al. 1989, "Backpropagation
    Applied to Handwritten Zip Code Recognition"): the same arguments, weights
    (``kernel`` ``(kh, kw, C // groups, filters)``, ``bias``) and numbers as
    ``keras.layers.Conv2D``, which it is (``isinstance`` checks and checkpoints see a
    ``Conv2D``). ``channels_first`` uses ``Conv2D``'s own path.

    Args: those of ``keras.layers.Conv2D``.

    Input shape: ``(batch, H, W, C)``. Output shape: ``(batch, H', W', filters)``, as
    ``Conv2D``.
    """

    def call(self, inputs):
        if self.data_format != "channels_last":
            return super().call(inputs)
        # the bias goes into the convolution (one pass over the output on PyTorch)
        outputs = self._convolve(inputs, self.kernel, self.bias if self.use_bias else None)
        return outputs if self.activation is None else self.activation(outputs)

    def convolution_op(self, inputs, kernel):
        if self.data_format != "channels_last":
            return super().convolution_op(inputs, kernel)
        return self._convolve(inputs, kernel, None)

    def _convolve(self, inputs, kernel, bias):
        return seg_ops.conv(inputs, kernel, tuple(self.strides), self.padding,
                            tuple(self.dilation_rate), bias=bias)


@keras.saving.register_keras_serializable(package="keras_seg")
class Conv2DTranspose(keras.layers.Conv2DTranspose):
    """``keras.layers.Conv2DTranspose`` computing its transposed convolution with
    :func:`keras_seg.ops.conv_transpose`: on the PyTorch backend without the layout copies
    of ``keras.ops.conv_transpose``; the other backends run ``keras.ops.conv_transpose``.

    The learned upsampling ("deconvolution") of FCN (Long et al. 2015, "Fully
    Convolutional Networks for Semantic Segmentation"), U-Net, LinkNet and ENet decoders:
    the same arguments, weights (``kernel`` ``(kh, kw, filters, C)``, ``bias``) and
    numbers as ``keras.layers.Conv2DTranspose``, which it is. ``channels_first`` uses
    Keras' own path.

    Args: those of ``keras.layers.Conv2DTranspose``.

    Input shape: ``(batch, H, W, C)``. Output shape: ``(batch, H', W', filters)``, as
    ``Conv2DTranspose``.
    """

    def call(self, inputs):
        if self.data_format != "channels_last":
            return super().call(inputs)
        outputs = seg_ops.conv_transpose(inputs, self.kernel, tuple(self.strides),
                                         self.padding, self.output_padding,
                                         tuple(self.dilation_rate))
        return _bias_and_activation(self, outputs, self.filters)


@keras.saving.register_keras_serializable(package="keras_seg")
class AtrousConv2D(Conv2D):
    """``keras.layers.Conv2D`` computing its stride-1 convolution with
    :func:`keras_seg.ops.atrous_conv`.

    The atrous (dilated) convolutions of DeepLab (Chen et al. 2017, "Rethinking Atrous
    Convolution for Semantic Image Segmentation") and of dilated ResNets: the same
    arguments, weights (``kernel`` ``(kh, kw, C, filters)``, ``bias``) and numbers as
    ``Conv2D``, but the convolution avoids two slow paths: TensorFlow's space-to-batch
    form of any dilated convolution on CPU, and the taps of a rate larger than the
    feature map, which only ever see zero padding (see :func:`keras_seg.ops.atrous_conv`).
    Strided or grouped convolutions use :class:`Conv2D`'s path, ``channels_first``
    Keras' own.

    Args: those of ``keras.layers.Conv2D``.

    Input shape: ``(batch, H, W, C)``. Output shape: ``(batch, H', W', filters)``, as
    ``Conv2D``.
    """

    def _convolve(self, inputs, kernel, bias):
        if tuple(self.strides) != (1, 1) or self.groups != 1:
            return super()._convolve(inputs, kernel, bias)
        return seg_ops.atrous_conv(inputs, kernel, tuple(self.dilation_rate), self.padding,
                                   bias=bias)


def _bias_and_activation(layer, outputs, width):
    if layer.use_bias:
        outputs = ops.add(outputs, ops.reshape(layer.bias, (1, 1, 1, width)))
    if layer.activation is not None:
        return layer.activation(outputs)
    return outputs


@keras.saving.register_keras_serializable(package="keras_seg")
class AtrousDepthwiseConv2D(keras.layers.DepthwiseConv2D):
    """``keras.layers.DepthwiseConv2D`` computed with :func:`keras_seg.ops.depthwise_conv`.

    The depthwise half of the atrous separable convolutions of DeepLab v3+ (Chen et al.
    2018, "Encoder-Decoder with Atrous Separable Convolution for Semantic Image
    Segmentation"): on JAX a stride-1 depthwise conv becomes a fused sum of shifted
    slices instead of XLA's slow grouped convolution, on PyTorch a grouped convolution
    without Keras' layout copies. Same arguments, weights
    (``kernel`` ``(kh, kw, C, depth_multiplier)``, ``bias``) and numbers.

    Input shape: ``(batch, H, W, C)``. Output shape: ``(batch, H', W', C *
    depth_multiplier)``.
    """

    def call(self, inputs):
        if self.data_format != "channels_last":
            return super().call(inputs)
        outputs = seg_ops.depthwise_conv(inputs, self.kernel, self.strides, self.padding,
                                         self.dilation_rate)
        return _bias_and_activation(self, outputs, outputs.shape[-1])


@keras.saving.register_keras_serializable(package="keras_seg")
class AtrousSeparableConv2D(keras.layers.SeparableConv2D):
    """``keras.layers.SeparableConv2D`` whose depthwise step is
    :func:`keras_seg.ops.depthwise_conv` (then the 1x1 pointwise convolution).

    DeepLab v3+'s atrous separable convolution as segmentation_models.pytorch builds it
    (depthwise straight into pointwise). Same arguments, weights (``depthwise_kernel``,
    ``pointwise_kernel``, ``bias``) and numbers as ``SeparableConv2D``.

    Input shape: ``(batch, H, W, C)``. Output shape: ``(batch, H', W', filters)``.
    """

    def call(self, inputs):
        if self.data_format != "channels_last":
            return super().call(inputs)
        depthwise = seg_ops.depthwise_conv(inputs, self.depthwise_kernel, self.strides,
                                           self.padding, self.dilation_rate)
        outputs = seg_ops.conv(depthwise, self.pointwise_kernel, strides=1, padding="valid")
        return _bias_and_activation(self, outputs, self.filters)
