"""Fully connected CRF post-processing (DeepLab v1's DenseCRF), in numpy and scipy.

Krähenbühl & Koltun, "Efficient Inference in Fully Connected CRFs with Gaussian
Edge Potentials", NIPS 2011; used by Chen et al., "Semantic Image Segmentation with
Deep Convolutional Nets and Fully Connected CRFs" (DeepLab v1), ICLR 2015, with
w1 = 4, theta_alpha = 49, theta_beta = 5, w2 = 3, theta_gamma = 3 and 10 mean-field
iterations.

The model. For an image with pixels ``i`` (position ``p_i``, colour ``I_i``) and
unary probabilities ``P`` (``U_i(l) = -log P_i(l)``), the CRF energy of a labelling
``x`` is::

    E(x) = sum_i U_i(x_i) + sum_{i<j} [x_i != x_j] (w1 k1(i, j) + w2 k2(i, j))
    k1(i, j) = exp(-|p_i - p_j|^2 / (2 theta_alpha^2) - |I_i - I_j|^2 / (2 theta_beta^2))
    k2(i, j) = exp(-|p_i - p_j|^2 / (2 theta_gamma^2))

(Potts compatibility). Each kernel matrix is used normalised symmetrically,
``D^-1/2 K D^-1/2`` with ``D = diag(K 1)``, as the released DenseCRF code does by
default (``NORMALIZE_SYMMETRIC``; the 2011 code divided by ``K 1``): the raw
Gaussian sums grow with the size of a uniform region (thousands of pixels at
theta_alpha = 49), so DeepLab's w1 = 4, w2 = 3 are weights of averages, not of raw
sums. Mean-field inference updates all pixels in parallel::

    Q_i(l) <- softmax_l(-U_i(l) + sum_m w_m sum_{j != i} k~_m(i, j) Q_j(l))

Exact message passing costs O((HW)^2). What this module computes instead:

* Appearance (bilateral) kernel: a permutohedral lattice (Adams, Baek & Davis,
  "Fast High-Dimensional Filtering Using the Permutohedral Lattice", 2010), the
  paper's own approximation, in the 5-D feature space
  ``(x / theta_alpha, y / theta_alpha, r / theta_beta, g / theta_beta, b / theta_beta)``,
  used as splat-then-slice WITHOUT the lattice blur: ``K1 ~= S S^T`` where ``S``
  (pixels x lattice vertices) holds each pixel's 6 barycentric weights, on a
  lattice half as fine as Adams' (``_LATTICE_SCALE``). Why: blurring a sparse
  lattice drops the values at vertices no pixel touches, which makes the operator
  asymmetric and its diagonal (a pixel's own contribution) unknown, whereas
  ``S S^T`` is exactly symmetric positive semi-definite with the diagonal
  ``sum_k b_ik^2``; it is also much cheaper (7 times fewer vertices on a 500x375
  photograph, no blur). The price is accuracy. Averaged over pairs of points at the
  same distance ``r`` (in standard deviations), the implied kernel is within 0.05
  of ``exp(-r^2 / 2)`` (peak 1) at every ``r``, and it is 0 beyond 5; but single
  pairs scatter around that average, because the weight depends on where the two
  points fall in the lattice. On 8 small images (synthetic scenes and photograph
  crops, 3 kernel widths each) the normalised messages for random probabilities
  differed from the exact ones by 12 % on average and 21 % at worst (relative L2);
  Adams' splat-blur-slice at its own resolution, with its diagonal computed
  exactly, differed by 4-21 % on the photograph crops. After 10 iterations on
  12x10 scenes, refined probabilities differ from exact mean field by 0.01-0.02 on
  average and the labels agree on 97-99 % of the pixels
  (``tests/inference/test_dense_crf.py``).
* Smoothness kernel: the exact separable Gaussian, truncated at ``truncate``
  standard deviations (3 by default: 0.3 % of the 1-D mass is dropped), applied as
  blocked banded matrix products.
* The self-message is excluded exactly for both kernels: the diagonal of each
  normalised operator is subtracted.
* Everything per iteration runs in float32 on ``(H*W, K)`` arrays, all classes at
  once.

Energy. ``return_energy=True`` also returns, for ``Q_0`` (the unary softmax) and
after every iteration, the mean-field free energy
``F(Q) = E_Q[E(x)] - H(Q) = KL(Q || P_crf) - log Z`` of the CRF with the kernels
as computed here. Parallel mean-field updates are not guaranteed to decrease it.
They do when the pairwise matrix is symmetric positive semi-definite (each update
is then a concave-convex procedure step, Krähenbühl & Koltun, ICML 2013): that
holds with ``exclude_self=False``, since ``S S^T`` and the Gaussian matrix are PSD
(the truncated Gaussian up to ~1e-4 of its mass). Removing the diagonal (the
paper's choice, the default) breaks this: two identical pixels with opposite
preferences and a large weight swap labels at every update and the free energy
oscillates. On the scenes of the tests, with weights up to 10, it still never rose
by more than float32 rounding (1e-6 of its value).

Why this is not a Keras layer (DESIGN lists "DenseCRF" among the layers): the
lattice is built per image by hashing and sorting the pixels' lattice vertices,
a data-dependent sparse structure that ``keras.ops`` has no efficient
backend-independent form for (no hash tables, no sparse matmul on every backend),
and DeepLab v1 applies the CRF after the network, on one image at a time, with no
gradient through it. So it runs on numpy arrays, after ``predict``.
"""

import math
import numbers

import numpy as np
import scipy.ndimage
import scipy.sparse
import scipy.special

__all__ = ["DenseCRF", "dense_crf"]

# Lattice resolution relative to Adams et al.'s (which sets the lattice spacing for
# splat-blur-slice with a [1, 2, 1] blur along each of the d + 1 lattice axes).
# Without the blur, half their resolution gives the splat-slice kernel the
# Gaussian's width: among 0.3 .. 0.7 it had the smallest error against the exact
# kernel (0.5 and 0.55 tied) on synthetic scenes and photograph crops.
_LATTICE_SCALE = 0.5

# Vertex codes are mixed-radix int64 numbers while the coordinate ranges' product
# stays below this; beyond it (huge images with tiny thetas) the vertices are
# numbered from their key rows instead (slower).
_MAX_CODE_SPAN = 2.0**62

# Column chunk of the blocked Gaussian filter's matrix products (see _GaussianKernel).
_COLUMNS = 128

# Probabilities (from_logits=False) must sum to one over the classes to this
# absolute tolerance (float16 softmax outputs are accurate to ~1e-3).
_SUM_TOLERANCE = 1e-2


# === Permutohedral lattice ===


def _row_sums(values):
    """Sums over the last axis of a 2-D array.

    ``np.add.reduce`` over a short last axis is slow, and a BLAS matrix-vector
    product may start threads: OpenBLAS's threads, spinning on a machine whose cores
    are busy, made such products 10x slower here (CPU time). ``einsum``'s loop is
    fast and stays on the calling thread.
    """
    return np.einsum("ij->i", values)


def _permutohedral_embedding(features):
    """Barycentric weights and vertex codes of points in the permutohedral lattice.

    Follows Adams et al. (2010): the ``d``-dimensional points are projected onto
    the hyperplane ``sum = 0`` of ``R^(d+1)``, the enclosing simplex is found from
    the nearest remainder-0 lattice point and the ordering of the residuals, and the
    point is written in barycentric coordinates of the simplex's ``d + 1`` vertices.
    Vectorised over points, working on each point's coordinates sorted by residual.

    Args:
        features: float64 array ``(N, d)``, already divided by the kernel's
            standard deviations and multiplied by the lattice scale.

    Returns:
        ``(barycentric, codes)``: float64 ``(N, d + 1)`` weights (non-negative up
        to rounding, summing to 1 per point) and int64 ``(N, d + 1)`` non-negative codes of the
        vertices (equal codes are equal vertices).
    """
    n, d = features.shape
    d1 = d + 1
    # Adams et al.'s per-axis scaling: makes the elevated coordinates isotropic
    scale = math.sqrt(2.0 / 3.0) * d1 / np.sqrt(np.arange(1, d + 1) * np.arange(2, d + 2))
    elevate = np.zeros((d1, d))
    for i in range(1, d1):
        elevate[i, i - 1] = -i
        elevate[:i, i - 1] = 1.0
    # (N, d1), rows sum to 0; einsum rather than BLAS, see _row_sums
    elevated = np.einsum("nd,kd->nk", features * scale, elevate)
    # nearest remainder-0 point (coordinates multiples of d1); its coordinates sum
    # to excess * d1, which the shift below brings back to 0
    rem0 = np.rint(elevated / d1) * d1
    excess = np.rint(_row_sums(rem0) / d1).astype(np.int64)
    # integer key range per coordinate (the shift and the simplex offsets move
    # coordinates by at most d1), for the mixed-radix vertex codes
    low_key = rem0[:, :d].min(axis=0).astype(np.int64) - 2 * d1
    extent = rem0[:, :d].max(axis=0).astype(np.int64) + 2 * d1 - low_key + 1
    # rank of a coordinate = its position when sorted by decreasing residual; the
    # shift by `excess` rotates the ranks: final rank r holds sorted position
    # (r - excess) mod d1, and the coordinates that wrap around move by -+d1
    order = np.argsort(rem0 - elevated, axis=1, kind="stable")
    order = np.take_along_axis(order, (np.arange(d1) - excess[:, None]) % d1, axis=1)
    rem0 = np.take_along_axis(rem0, order, axis=1)  # now indexed by final rank
    elevated = np.take_along_axis(elevated, order, axis=1)
    rem0 -= d1 * (np.arange(d1) < excess[:, None])
    rem0 += d1 * (np.arange(d1) >= d1 + excess[:, None])
    ascending = ((elevated - rem0) / d1)[:, ::-1]
    barycentric = np.empty((n, d1))
    barycentric[:, 0] = 1.0 + ascending[:, 0] - ascending[:, d]
    barycentric[:, 1:] = np.diff(ascending, axis=1)

    if float(np.prod(extent.astype(np.float64))) >= _MAX_CODE_SPAN:
        # too spread for one int64 code per vertex (huge image, tiny thetas): number
        # the distinct key rows instead (slower, same vertices)
        keys = np.empty((n, d1, d1), dtype=np.int64)
        for k in range(d1):
            vertex = rem0.astype(np.int64) + k - d1 * (np.arange(d1) > d - k)
            np.put_along_axis(keys[:, k, :], order, vertex, axis=1)
        _, codes = np.unique(keys[:, :, :d].reshape(n * d1, d), axis=0, return_inverse=True)
        return barycentric, codes.reshape(n, d1).astype(np.int64)
    strides = np.zeros(d1, dtype=np.int64)  # coordinate d is implied (sum 0): stride 0
    strides[d - 1] = 1
    for i in range(d - 2, -1, -1):
        strides[i] = strides[i + 1] * extent[i + 1]
    ranked_strides = strides[order]
    rem0 = rem0.astype(np.int64)
    base = np.full(n, -(low_key @ strides[:d]), dtype=np.int64)
    for r in range(d1):  # column by column: a row sum over 6 entries is slow
        base += rem0[:, r] * ranked_strides[:, r]
    # vertex k: every coordinate + k, and - d1 on the k coordinates of highest rank
    drop = np.cumsum(ranked_strides[:, ::-1], axis=1)
    codes = base[:, None] + np.arange(d1) * strides.sum()
    codes[:, 1:] -= d1 * drop[:, :d]
    return barycentric, codes


def _number_vertices(codes):
    """Consecutive vertex ids ``(N * (d + 1),)`` int32 for the codes, and their count.

    Sorting the codes with each entry's index packed into the low bits gives the
    permutation at the speed of a plain sort (numpy's argsort is several times
    slower); falls back to ``np.unique`` when code and index do not fit in 63 bits.
    """
    flat = codes.ravel()
    flat = flat - flat.min()
    index_bits = max(int(flat.size - 1).bit_length(), 1)
    if int(flat.max()) < 2 ** (62 - index_bits):
        packed = (flat << index_bits) | np.arange(flat.size, dtype=np.int64)
        packed.sort()
        sorted_codes = packed >> index_bits
        first = np.empty(flat.size, dtype=bool)
        first[0] = True
        np.not_equal(sorted_codes[1:], sorted_codes[:-1], out=first[1:])
        ids_sorted = np.cumsum(first, dtype=np.int64) - 1
        ids = np.empty(flat.size, dtype=np.int32)
        ids[packed & ((1 << index_bits) - 1)] = ids_sorted
        return ids, int(ids_sorted[-1]) + 1
    unique, ids = np.unique(flat, return_inverse=True)
    return ids.astype(np.int32), len(unique)


def _splat_matrix(features):
    """Each point's barycentric weights on the lattice vertices it touches.

    Returns ``(matrix, self_weight)``: a float64 CSR matrix ``S`` of shape
    ``(N, M)`` (``d + 1`` entries per row) and ``diag(S S^T)``, ``(N,)``.
    """
    n, d = features.shape
    barycentric, codes = _permutohedral_embedding(features * _LATTICE_SCALE)
    vertex, num_vertices = _number_vertices(codes)
    matrix = scipy.sparse.csr_matrix(
        (barycentric.ravel(), vertex, np.arange(0, n * (d + 1) + 1, d + 1)),
        shape=(n, num_vertices),
    )
    return matrix, np.square(barycentric).sum(axis=1)


# === Kernels: weighted, symmetrically normalised, diagonal kept apart ===


class _BilateralKernel:
    """``w D^-1/2 S S^T D^-1/2`` applied to ``(N, K)`` arrays (``D = diag(S S^T 1)``).

    The scaling ``sqrt(w) D^-1/2`` is folded into the rows of ``S``, so one message
    costs one splat (``S^T q``) and one slice (``S v``). ``diagonal`` is the
    operator's own diagonal, ``w diag(S S^T) / D``.
    """

    def __init__(self, image, weight, theta_alpha, theta_beta):
        height, width = image.shape[:2]
        rows, cols = np.mgrid[0:height, 0:width]
        features = np.concatenate(
            [
                cols[..., None] / theta_alpha,
                rows[..., None] / theta_alpha,
                image.astype(np.float64) / theta_beta,
            ],
            axis=-1,
        ).reshape(-1, 5)
        splat, self_weight = _splat_matrix(features)
        degree = splat @ (splat.T @ np.ones(splat.shape[0]))
        row_scale = np.sqrt(weight / degree)
        splat.data *= np.repeat(row_scale, np.diff(splat.indptr))
        self.splat = splat.astype(np.float32)
        self.splat_t = self.splat.T  # CSC view: S^T q runs as a scatter over pixels
        self.diagonal = weight * self_weight / degree

    def apply(self, values):
        return self.splat @ (self.splat_t @ values)


def _gaussian_band_blocks(length, taps, weight, block=32):
    """The normalised 1-D matrix ``w R T R`` of a truncated Gaussian, cut in row blocks.

    ``T[i, j] = taps[i - j + r]`` for ``|i - j| <= r`` (zero outside the image) and
    ``R = diag(T 1)^-1/2``. Returns the blocks as ``(out_start, in_start, matrix)``:
    output rows ``out_start .. out_start + b`` depend only on input rows
    ``in_start .. in_start + L`` (``L = b + 2r``), so ``T x`` is a few dense matrix
    products (BLAS) instead of a per-element convolution.
    """
    radius = (len(taps) - 1) // 2
    if length <= block + 2 * radius:  # small: one dense block
        starts = [(0, 0, length, length)]
    else:
        starts = []
        out = 0
        while out < length:
            out = min(out, length - block)
            inp = min(max(out - radius, 0), length - block - 2 * radius)
            starts.append((out, inp, block, block + 2 * radius))
            out += block
    degree = np.zeros(length)  # T 1: the taps that fall inside the image
    for i in range(-min(radius, length - 1), min(radius, length - 1) + 1):
        degree[max(0, i):length + min(0, i)] += taps[i + radius]
    scale = 1.0 / np.sqrt(degree)
    blocks = []
    for out, inp, rows, cols in starts:
        off = (out + np.arange(rows))[:, None] - (inp + np.arange(cols))[None, :]
        inside = np.abs(off) <= radius
        values = np.where(inside, taps[np.clip(off + radius, 0, 2 * radius)], 0.0)
        values *= weight * scale[out:out + rows, None] * scale[None, inp:inp + cols]
        blocks.append((out, inp, values.astype(np.float32)))
    return blocks, degree


class _GaussianKernel:
    """``w D^-1/2 G D^-1/2`` for the exact truncated spatial Gaussian ``G``.

    ``G`` and ``D`` are separable (rows x columns), so the normalised operator is the
    product of two normalised 1-D banded matrices, applied as blocked matrix
    products along the height then the width.
    """

    def __init__(self, height, width, weight, theta_gamma, truncate):
        radius = max(int(math.ceil(truncate * theta_gamma)), 1)
        offsets = np.arange(-radius, radius + 1, dtype=np.float64)
        taps = np.exp(-0.5 * (offsets / theta_gamma) ** 2)
        self.row_blocks, row_degree = _gaussian_band_blocks(height, taps, weight)
        self.col_blocks, col_degree = _gaussian_band_blocks(width, taps, 1.0)
        self.diagonal = weight / np.outer(row_degree, col_degree).ravel()
        self.shape = (height, width)

    def apply(self, values):
        height, width = self.shape
        channels = values.shape[-1]
        flat = values.reshape(height, width * channels)
        along_rows = np.empty_like(flat)
        # products of at most _COLUMNS columns: OpenBLAS runs those on the calling
        # thread; one product over all columns started its threads, which cost 10x
        # the CPU time (and 10x the wall time) on a machine with busy cores
        columns = flat.shape[1]
        whole = columns - columns % _COLUMNS
        for out, inp, matrix in self.row_blocks:
            rows, cols = matrix.shape
            source = flat[inp:inp + cols, :whole].reshape(cols, -1, _COLUMNS)
            target = along_rows[out:out + rows, :whole].reshape(rows, -1, _COLUMNS)
            np.matmul(matrix, source.transpose(1, 0, 2), out=target.transpose(1, 0, 2))
            if whole < columns:
                np.matmul(matrix, flat[inp:inp + cols, whole:],
                          out=along_rows[out:out + rows, whole:])
        grid = along_rows.reshape(height, width, channels)
        result = np.empty_like(grid)
        for out, inp, matrix in self.col_blocks:
            rows, cols = matrix.shape
            np.matmul(matrix, grid[:, inp:inp + cols], out=result[:, out:out + rows])
        return result.reshape(values.shape)


class _Pairwise:
    """``A q = sum_m w_m (D_m^-1/2 K_m D_m^-1/2 - [diagonal]) q`` for ``q`` of shape ``(N, K)``."""

    def __init__(self, image, w1, theta_alpha, theta_beta, w2, theta_gamma, truncate,
                 exclude_self):
        height, width = image.shape[:2]
        self.kernels = []
        if w1 > 0:
            self.kernels.append(_BilateralKernel(image, w1, theta_alpha, theta_beta))
        if w2 > 0:
            self.kernels.append(_GaussianKernel(height, width, w2, theta_gamma, truncate))
        self.diagonal = None
        if exclude_self and self.kernels:
            diagonal = sum(kernel.diagonal for kernel in self.kernels)
            self.diagonal = diagonal.astype(np.float32)[:, None]

    def __call__(self, q):
        if not self.kernels:
            return np.zeros_like(q)
        out = self.kernels[0].apply(q)
        for kernel in self.kernels[1:]:
            out += kernel.apply(q)
        if self.diagonal is not None:
            out -= q * self.diagonal
        return out


def _softmax_inplace(z, upper_bound=None):
    """Softmax over the last axis of a float32 ``(N, K)`` array of mean-field logits.

    Relies on what holds in the mean-field update: every row has an entry
    ``>= -log(K)`` (the unary part is a log-softmax, the messages are ``>= 0``) and,
    given ``upper_bound``, no entry exceeds it. Then, when the bound is below 80, no
    shift is needed at all (``exp`` cannot overflow and no row can underflow), and
    otherwise shifting by the global maximum is safe while its spread is below 80;
    only beyond that does it take each row's own maximum (a slow reduction).
    """
    log_classes = math.log(z.shape[1])
    if upper_bound is None or upper_bound + log_classes >= 80.0:
        top = float(z.max())
        if top + log_classes < 80.0:
            z -= top
        else:
            z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    total = _row_sums(z)
    z /= total[:, None]
    return z


def _free_energy(q, unary, message, pairwise_total):
    """Mean-field free energy ``E_Q[E(x)] - H(Q)`` with Potts compatibility.

    ``E_Q[sum_{i<j} [x_i != x_j] A_ij] = (1^T A 1 - sum_l q_l^T A q_l) / 2``.
    """
    q = q.astype(np.float64)
    expected_unary = np.sum(q * unary)
    negative_entropy = np.sum(scipy.special.xlogy(q, q))
    expected_pairwise = 0.5 * (pairwise_total - np.sum(q * message.astype(np.float64)))
    return float(expected_unary + negative_entropy + expected_pairwise)


# === Argument checks ===


def _check_parameters(iterations, w1, theta_alpha, theta_beta, w2, theta_gamma, truncate):
    if isinstance(iterations, bool) or not isinstance(iterations, numbers.Integral) or (
        iterations < 0
    ):
        raise ValueError(f"iterations must be an integer >= 0, got {iterations!r}.")
    for name, value in (("w1", w1), ("w2", w2)):
        if not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
            raise ValueError(
                f"{name} must be a finite number >= 0 (0 switches that kernel off), "
                f"got {value!r}."
            )
    for name, value in (
        ("theta_alpha", theta_alpha),
        ("theta_beta", theta_beta),
        ("theta_gamma", theta_gamma),
        ("truncate", truncate),
    ):
        if not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")


def _check_inputs(image, probabilities, from_logits):
    """Validate; return the uint8 image and float32 ``log P``, ``(H*W, K)`` (rows normalised)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(
            f"image must be a uint8 RGB array (values 0-255), got dtype {image.dtype}. "
            "Convert it, e.g. np.clip(image * 255, 0, 255).astype('uint8') for floats "
            "in [0, 1], or image.astype('uint8') for integer pixels."
        )
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(
            f"image must have shape (height, width, 3) (one RGB image), got {image.shape}. "
            "For grayscale use np.repeat(gray[..., None], 3, axis=-1); drop an alpha "
            "channel with image[..., :3]; pass batches one image at a time."
        )
    probabilities = np.asarray(probabilities)
    if probabilities.ndim != 3:
        raise ValueError(
            "probabilities must have shape (height, width, num_classes), got "
            f"{probabilities.shape}. Pass one image's output, e.g. model(x)[0]."
        )
    if probabilities.shape[:2] != image.shape[:2]:
        raise ValueError(
            f"probabilities have spatial size {probabilities.shape[:2]} but the image has "
            f"{image.shape[:2]}: they must match. Resize the network output to the image "
            "size first (keras_seg.inference returns outputs at each image's own size)."
        )
    if probabilities.shape[-1] < 1 or image.shape[0] * image.shape[1] == 0:
        raise ValueError(
            f"empty input: image {image.shape}, probabilities {probabilities.shape}."
        )
    if not np.issubdtype(probabilities.dtype, np.floating):
        raise ValueError(
            f"probabilities must be floating point, got dtype {probabilities.dtype}."
        )
    num_classes = probabilities.shape[-1]
    values = np.array(probabilities, dtype=np.float32).reshape(-1, num_classes)
    low, high = values.min(), values.max()
    if not (np.isfinite(low) and np.isfinite(high)):
        bad = int(np.sum(~np.isfinite(values)))
        raise ValueError(
            f"probabilities contain {bad} NaN or infinite values; the network output is "
            "broken (check its input and weights) - the CRF cannot repair it."
        )
    if from_logits:
        values -= high
        total = _row_sums(np.exp(values))
        underflow = total < 1e-30  # rows far below the global maximum: own maximum
        if np.any(underflow):
            rows = values[underflow]
            rows -= rows.max(axis=1, keepdims=True)
            values[underflow] = rows
            total[underflow] = _row_sums(np.exp(rows))
        values -= np.log(total)[:, None]
        return image, values
    total = _row_sums(values)
    deviation = float(np.max(np.abs(total - 1.0)))
    if low < -_SUM_TOLERANCE or high > 1.0 + _SUM_TOLERANCE or deviation > _SUM_TOLERANCE:
        raise ValueError(
            "probabilities must be in [0, 1] and sum to 1 over the last axis "
            f"(min {low:.4g}, max {high:.4g}, largest |sum - 1| {deviation:.4g}). If these "
            "are logits (a keras_seg model's raw output), pass from_logits=True; "
            "otherwise apply a softmax over the classes first."
        )
    np.maximum(values, np.finfo(np.float32).tiny, out=values)
    np.log(values, out=values)
    values -= np.log(total)[:, None]
    return image, values


# === Public API ===


def dense_crf(
    image,
    probabilities,
    *,
    iterations=10,
    w1=4.0,
    theta_alpha=49.0,
    theta_beta=5.0,
    w2=3.0,
    theta_gamma=3.0,
    from_logits=False,
    return_energy=False,
    exclude_self=True,
    truncate=3.0,
):
    """Refine a segmentation with a fully connected CRF (DeepLab v1's post-processing).

    Mean-field inference in the fully connected CRF of Krähenbühl & Koltun (NIPS
    2011) with Potts compatibility, an appearance (bilateral) kernel and a
    smoothness kernel; the defaults are DeepLab v1's (Chen et al., ICLR 2015). The
    module docstring states the model, the normalisation of the kernels and how the
    message passing is approximated (a permutohedral lattice used as splat-slice for
    the bilateral kernel, an exact truncated Gaussian for the smoothness kernel).
    A 500x375 image with 21 classes and 10 iterations takes 0.59 s on an idle
    2-core machine: 0.19 s to build the lattice, 0.04 s per iteration (1.2-1.3 s of
    CPU time when the machine was shared; ``benchmarks/dense_crf.md``). Memory peaks
    at about 0.6 KB per pixel with 21 classes (116 MB for 500x375).

    Args:
        image: uint8 array ``(H, W, 3)``, the RGB image the probabilities belong to.
        probabilities: float array ``(H, W, K)``: softmax probabilities (summing to
            1 over the last axis), or logits with ``from_logits=True``.
        iterations: number of parallel mean-field updates (DeepLab: 10).
        w1: weight of the appearance kernel (DeepLab: 4); 0 switches it off.
        theta_alpha: its spatial standard deviation in pixels (DeepLab: 49).
        theta_beta: its colour standard deviation in intensity levels (DeepLab: 5).
        w2: weight of the smoothness kernel (DeepLab: 3); 0 switches it off.
        theta_gamma: its spatial standard deviation in pixels (DeepLab: 3).
        from_logits: whether ``probabilities`` are logits (softmax is applied).
        return_energy: also return the mean-field free energy of ``Q_0`` (the unary
            softmax) and of the result of every iteration.
        exclude_self: leave a pixel's own contribution out of its messages
            (``j != i``, as the paper); ``False`` keeps it, which makes the free
            energy provably non-increasing.
        truncate: the smoothness Gaussian is cut at this many standard deviations.

    Returns:
        float32 array ``(H, W, K)`` of refined probabilities (summing to 1 over the
        last axis); with ``return_energy``, a tuple ``(probabilities, energies)``
        with ``energies`` a float64 array of shape ``(iterations + 1,)``.

    Raises:
        ValueError: for a non-uint8 or non-RGB image, probabilities of another
            spatial size, NaN / infinite values, probabilities that do not sum to 1
            (with ``from_logits=False``), or invalid parameters.
    """
    _check_parameters(iterations, w1, theta_alpha, theta_beta, w2, theta_gamma, truncate)
    image, log_probabilities = _check_inputs(image, probabilities, from_logits)
    height, width = image.shape[:2]
    num_classes = log_probabilities.shape[1]
    pairwise = _Pairwise(
        image, w1, theta_alpha, theta_beta, w2, theta_gamma, truncate, exclude_self
    )
    q = _softmax_inplace(log_probabilities.copy(), upper_bound=0.0)  # log P <= 0
    # A 1 bounds every message (A >= 0 entrywise) and gives E_Q's constant 1^T A 1 / 2
    row_sums = pairwise(np.ones((height * width, 1), np.float32))
    upper_bound = float(row_sums.max())
    energies = []
    if return_energy:
        unary = -log_probabilities.astype(np.float64)
        pairwise_total = float(np.sum(row_sums, dtype=np.float64))
    for _ in range(iterations):
        message = pairwise(q)
        if return_energy:
            energies.append(_free_energy(q, unary, message, pairwise_total))
        message += log_probabilities
        q = _softmax_inplace(message, upper_bound)
    if return_energy:
        energies.append(_free_energy(q, unary, pairwise(q), pairwise_total))
    q = q.reshape(height, width, num_classes)
    if return_energy:
        return q, np.asarray(energies, dtype=np.float64)
    return q


class DenseCRF:
    """Fully connected CRF post-processing with fixed parameters (DeepLab v1).

    Holds the parameters of :func:`dense_crf` (same names, same defaults: w1 = 4,
    theta_alpha = 49, theta_beta = 5, w2 = 3, theta_gamma = 3, 10 iterations, from
    Chen et al., ICLR 2015) and applies them to one image at a time. It is a plain
    callable, not a Keras layer: the permutohedral lattice is a per-image sparse
    structure built by hashing, which ``keras.ops`` cannot express on every backend,
    and DeepLab v1 applies the CRF after the network without gradients (see the
    module docstring).

    Args:
        iterations, w1, theta_alpha, theta_beta, w2, theta_gamma, from_logits,
        exclude_self, truncate: as in :func:`dense_crf`.

    Call arguments:
        image: uint8 ``(H, W, 3)``.
        probabilities: float ``(H, W, K)`` probabilities (or logits if
            ``from_logits``).
        return_energy: as in :func:`dense_crf`.

    Returns:
        float32 ``(H, W, K)`` refined probabilities (and the energies with
        ``return_energy``).

    Example::

        crf = DenseCRF()
        refined = crf(image, probabilities)      # (H, W, K)
        labels = refined.argmax(-1)
    """

    def __init__(
        self,
        iterations=10,
        w1=4.0,
        theta_alpha=49.0,
        theta_beta=5.0,
        w2=3.0,
        theta_gamma=3.0,
        from_logits=False,
        exclude_self=True,
        truncate=3.0,
    ):
        _check_parameters(iterations, w1, theta_alpha, theta_beta, w2, theta_gamma, truncate)
        self.iterations = int(iterations)
        self.w1 = float(w1)
        self.theta_alpha = float(theta_alpha)
        self.theta_beta = float(theta_beta)
        self.w2 = float(w2)
        self.theta_gamma = float(theta_gamma)
        self.from_logits = bool(from_logits)
        self.exclude_self = bool(exclude_self)
        self.truncate = float(truncate)

    def get_config(self):
        """The parameters as a dict; ``DenseCRF(**config)`` rebuilds an equal instance."""
        return {
            "iterations": self.iterations,
            "w1": self.w1,
            "theta_alpha": self.theta_alpha,
            "theta_beta": self.theta_beta,
            "w2": self.w2,
            "theta_gamma": self.theta_gamma,
            "from_logits": self.from_logits,
            "exclude_self": self.exclude_self,
            "truncate": self.truncate,
        }

    def __call__(self, image, probabilities, return_energy=False):
        return dense_crf(image, probabilities, return_energy=return_energy, **self.get_config())

    def __repr__(self):
        args = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"DenseCRF({args})"
