"""Reference trainable-parameter counts, computed from each paper's layer list.

Pure arithmetic (no model is built): the tiny cases of ``tiny_models.py`` take their
``expected_trainable_params`` from here, and the architecture tests assert the
paper-size counts with the same formulas. A formula lives here, never in a test
module, so that no test module imports another.

Conventions: ``conv(k, cin, cout)`` is a k x k convolution with bias; ``bias=False``
drops it; ``bn(c)`` is a BatchNormalization's trainable gamma and beta.
"""


def conv(k, cin, cout, bias=True):
    return k * k * cin * cout + (cout if bias else 0)


def bn(c):
    return 2 * c


def cbr(k, cin, cout):
    """Convolution without bias + BatchNormalization."""
    return conv(k, cin, cout, False) + bn(cout)


# === VGG-16 (FCN, DeepLab v1, DilatedNet, G-FRNet, U-Net's backbone) ===

VGG16_WIDTHS = (64, 128, 256, 512, 512)
VGG16_CONVS = (2, 2, 3, 3, 3)
#: ``width_multiplier=0.125``: each width / 8, rounded to a multiple of 8 (at least 8)
VGG16_TINY_WIDTHS = (8, 16, 32, 64, 64)


def vgg16_conv_params(widths=VGG16_WIDTHS, cin=3):
    """The 13 3x3 convolutions (with bias) of VGG-16."""
    total, prev = 0, cin
    for width, n in zip(widths, VGG16_CONVS, strict=True):
        for _ in range(n):
            total += conv(3, prev, width)
            prev = width
    return total


def vgg16_fc_params(widths=VGG16_WIDTHS, fc=4096, fc_kernel=7, cin=3):
    """VGG-16's convolutions and fc6 (``fc_kernel`` x ``fc_kernel``) / fc7 (1x1) as convs."""
    return vgg16_conv_params(widths, cin) + conv(fc_kernel, widths[-1], fc) + conv(1, fc, fc)


# === ResNet-18 (LinkNet, RefineNet): v1.5, convs without bias + BN ===

RESNET18_TINY_WIDTHS = (8, 16, 32, 64)


def resnet18_params(widths=(64, 128, 256, 512), cin=3):
    total = 49 * cin * widths[0] + 2 * widths[0]  # 7x7 stem + BN
    prev = widths[0]
    for i, w in enumerate(widths):
        for u in range(2):
            total += 9 * prev * w + 2 * w + 9 * w * w + 2 * w
            if u == 0 and (i > 0):
                total += prev * w + 2 * w  # projection shortcut
            prev = w
    return total


# === the five-conv stand-in backbone of tiny_pyramid.py ===

def tiny_pyramid_widths(width=8):
    """Channels of P1..P5 of ``tiny_pyramid(width=width)``."""
    return (width, width, 2 * width, 2 * width, 4 * width)


def tiny_pyramid_params(width=8, channels=3):
    total, prev = 0, channels
    for w in tiny_pyramid_widths(width):
        total += conv(3, prev, w)
        prev = w
    return total


# === U-Net (Ronneberger et al. 2015) ===

def unet_reference_params(in_ch, num_classes, filters, depth, upsampling="transpose"):
    """Trainable parameters of the paper's U-Net, counted from its layer list."""
    total, prev = 0, in_ch
    for level in range(depth + 1):
        width = filters * 2**level
        total += conv(3, prev, width) + conv(3, width, width)
        prev = width
    for level in reversed(range(depth)):
        width = filters * 2**level
        k = 2 if upsampling == "transpose" else 1
        total += conv(k, prev, width)  # up-conv halves the width
        total += conv(3, 2 * width, width) + conv(3, width, width)
        prev = width
    return total + conv(1, prev, num_classes)


def unet_deep_supervision_params(num_classes, filters, depth):
    """U-Net with deep supervision: + a 1x1 classifier (with bias) on each decoder level at
    strides 2 .. 2**(depth - 1) (widths filters * 2, filters * 4, ...)."""
    extra = sum((filters * 2**k + 1) * num_classes for k in range(1, depth))
    return unet_reference_params(3, num_classes, filters, depth) + extra


# === FCN (Long et al. 2015) ===

def fcn_trainable(c, skips, widths=VGG16_WIDTHS, fc=4096):
    """VGG16 + fc6/fc7 + score layers + the learnable x2 deconvolutions (the final one is
    fixed)."""
    total = vgg16_fc_params(widths, fc) + conv(1, fc, c)
    for level in range(skips):
        total += conv(1, widths[3 - level], c) + conv(4, c, c, bias=False)
    return total


# === SegNet (Badrinarayanan et al. 2017) ===

def segnet_params(c, widths=VGG16_WIDTHS, convs=VGG16_CONVS, cin=3):
    """(encoder, total) trainable parameters counted from the paper's layer list
    (3x3 conv with bias, then BN)."""
    def conv_bn(cin, cout):
        return conv(3, cin, cout) + bn(cout)

    encoder, prev = 0, cin
    for width, n in zip(widths, convs, strict=True):
        for _ in range(n):
            encoder += conv_bn(prev, width)
            prev = width
    decoder = 0
    for s in range(len(widths) - 1, -1, -1):
        for i in range(convs[s]):
            last = i == convs[s] - 1
            if last and s == 0:
                decoder += conv(3, prev, c)  # the classifier conv
            else:
                out = widths[s - 1] if last else widths[s]
                decoder += conv_bn(prev, out)
                prev = out
    return encoder, encoder + decoder


# === LinkNet (Chaurasia & Culurciello 2017) ===

def linknet_decoder_block_params(m, n):
    q = m // 4
    return m * q + 9 * q * q + q * n + 2 * (q + q + n)  # 3 convs (no bias) + BN gamma/beta


def linknet_params(c, widths=(64, 128, 256, 512)):
    total = resnet18_params(widths)
    chain = [widths[3], widths[2], widths[1], widths[0], widths[0]]
    for m, n in zip(chain[:-1], chain[1:], strict=True):
        total += linknet_decoder_block_params(m, n)
    f = widths[0] // 2
    return total + 9 * widths[0] * f + 2 * f + 9 * f * f + 2 * f + 4 * f * c + c


# === DilatedNet's context module (Yu & Koltun 2016) ===

def context_params(c, variant):
    widths = [c] * 8 if variant == "basic" else [2 * c, 2 * c, 4 * c, 8 * c, 16 * c, 32 * c,
                                                 32 * c, c]
    total, prev = 0, c
    for i, w in enumerate(widths):
        k = 1 if i == 7 else 3
        total += conv(k, prev, w)
        prev = w
    return total


def dilatednet_params(c, widths=VGG16_WIDTHS, fc=4096, context="large"):
    """VGG-16 front end (fc6 7x7, fc7 1x1), the 1x1 classifier, the context module."""
    head = conv(1, fc, c)
    return vgg16_fc_params(widths, fc, 7) + head + (context_params(c, context) if context
                                                    else 0)


# === DeepLab (Chen et al. 2015, 2017, 2018) ===

def deeplabv1_params(c, widths=VGG16_WIDTHS, fc=1024):
    """LargeFOV: VGG-16 convs, fc6 3x3 (rate 12), fc7 1x1, fc8 1x1."""
    return vgg16_fc_params(widths, fc, 3) + conv(1, fc, c)


def msc_params(channels, filters, classes):
    """DeepLab-MSc's added weights: per source a 3x3 conv and a 1x1 conv (biases), and
    fc8's new input channels."""
    mlps = sum(conv(3, c, filters) + conv(1, filters, filters) for c in channels)
    return mlps + len(channels) * filters * classes


def aspp_params(cin, f, n_rates, separable=False, image_pooling=True):
    """DeepLab v3's ASPP: a 1x1 branch, ``n_rates`` atrous branches, image pooling, and the
    1x1 projection of the concatenation (convs without bias, each + BN)."""
    if separable:  # depthwise 3x3 + BN, pointwise 1x1 + BN
        atrous = 9 * cin + bn(cin) + cbr(1, cin, f)
    else:
        atrous = cbr(3, cin, f)
    branches = 1 + n_rates + (1 if image_pooling else 0)
    pool = cbr(1, cin, f) if image_pooling else 0
    return cbr(1, cin, f) + n_rates * atrous + pool + cbr(1, branches * f, f)


def v3plus_head_params(cin, low, filters, low_filters, decoder, classes, separable):
    """DeepLab v3+: ASPP, the low-level 1x1 reduction, two 3x3 decoder convs, classifier."""
    concat = filters + low_filters
    if separable:
        convs = (9 * concat + bn(concat) + cbr(1, concat, decoder)
                 + 9 * decoder + bn(decoder) + cbr(1, decoder, decoder))
    else:
        convs = cbr(3, concat, decoder) + cbr(3, decoder, decoder)
    return (aspp_params(cin, filters, 3, separable=separable) + cbr(1, low, low_filters)
            + convs + conv(1, decoder, classes))


# === PSPNet (Zhao et al. 2017) ===

def pspnet_head_params(cin, classes, filters, bins=4):
    ppm = bins * cbr(1, cin, cin // bins)
    return ppm + cbr(3, 2 * cin, filters) + conv(1, filters, classes)


def pspnet_aux_params(cin, classes, filters):
    return cbr(3, cin, filters) + conv(1, filters, classes)


# === RefineNet (Lin et al. 2017) ===

def rcu_params(w):
    return 2 * conv(3, w, w)  # two 3x3 convs with bias, no BN


def refinenet_decoder_params(level_channels, widths, num_classes, crp_blocks=2):
    """Trainable parameters of the 4-cascaded RefineNet decoder, from the paper's layer
    list. ``level_channels``: backbone widths of res5, res4, res3, res2."""
    total, prev = 0, None
    for channels, w in zip(level_channels, widths, strict=True):
        total += 9 * channels * w  # 3x3 adaptation conv, no bias
        paths = [w] if prev is None else [prev, w]
        total += sum(2 * rcu_params(p) for p in paths)  # two RCUs per path
        if len(paths) > 1:
            total += sum(9 * p * w for p in paths)  # MRF: a 3x3 conv per path, no bias
        total += crp_blocks * 9 * w * w  # CRP convs, no bias
        total += rcu_params(w)  # output RCU
        prev = w
    return total + 2 * rcu_params(prev) + conv(1, prev, num_classes)  # head


# === G-FRNet (Islam et al. 2017) ===

def gfrnet_decoder_params(num_classes, widths=VGG16_WIDTHS):
    """Trainable parameters of G-FRNet's decoder from the paper's layer list."""
    levels = list(widths) + [widths[-1]]  # + pool5
    c = num_classes
    total = conv(3, levels[-1], c)  # coarse 3x3 conv
    for stage in range(1, 6):
        shallow, deep = levels[5 - stage], levels[6 - stage]
        g = shallow  # gate width = the shallower level's width
        total += 9 * shallow * g + 9 * deep * g + 2 * bn(g)  # 2 convs (no bias) + 2 BN
        total += cbr(3, g, c)  # gated features -> C
        total += conv(3, 2 * c, c)  # concat(2C) -> C
    return total


# === DANet (Fu et al. 2019) ===

def danet_head_params(cin, f, classes, reduction=8, aux=False):
    pam = 2 * conv(1, f, f // reduction) + conv(1, f, f) + 1  # query, key, value, gamma
    cam = 1  # beta
    branches = 2 * (cbr(3, cin, f) + cbr(3, f, f)) + pam + cam
    return branches + conv(1, f, classes) + (2 * conv(1, f, classes) if aux else 0)


# === APCNet (He et al. 2019) ===

def apcnet_head_params(cin, f, classes, scales=(1, 2, 3, 6)):
    acms = sum(2 * cbr(1, cin, f) + conv(1, f, s * s) for s in scales)
    return acms + cbr(3, cin + len(scales) * f, f) + conv(1, f, classes)
