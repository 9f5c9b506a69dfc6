"""TF-Slim evaluation preprocessing, implemented once in NumPy and Pillow: both recipes.

``prepare(path, preprocessing)`` is the one entry point; models.yaml picks the recipe.

inception (``research/slim/preprocessing/inception_preprocessing.py``, ``preprocess_for_eval``):
decode JPEG -> float in [0, 1] -> ``tf.image.central_crop`` keeping ``central_fraction`` of
height and width -> TF1 ``resize_bilinear`` (``align_corners=False``, no half-pixel centres)
-> ``(x - 0.5) * 2``, RGB order (``prepare_image``).

vgg (``research/slim/preprocessing/vgg_preprocessing.py``, ``preprocess_for_eval``): decode JPEG
(uint8) -> aspect-preserving TF1 ``resize_bilinear`` so the shorter side is ``resize_side``, the
new size computed in float32 and truncated (``_smallest_size_at_least``) -> central crop with
offsets ``(new - size) // 2`` -> subtract the RGB means 123.68/116.78/103.94, no scaling
(``prepare_image_vgg``).

Here every step up to the resize works in 0..255 pixel units. Crop and resize are linear, so
this equals TF-Slim's [0, 1] pipeline times 255 (up to float32 rounding). The last step is
runtime specific: the TensorFlow graph gets NHWC ``(x - mean) / scale`` (``to_nhwc_normalized``),
the OpenVINO IR gets raw NCHW BGR (``to_nchw_bgr``) because it folds mean, scale and the channel
reversal into its own preprocessing.

Decoding uses Pillow, whose libjpeg-turbo "islow" DCT is bit-identical to TensorFlow's
``decode_jpeg(dct_method='INTEGER_ACCURATE')``. EXIF orientation is not applied (TF doesn't).

No TensorFlow import: both runtimes and the benchmarks share this module.
"""

from __future__ import annotations

import functools
import io
import os
from typing import Sequence, Union

import numpy as np
from PIL import Image

from omzconv.errors import ImageDecodeError

ImageSource = Union[str, "os.PathLike[str]", bytes]
MeanScale = Union[float, Sequence[float]]


def source_name(source: ImageSource) -> str:
    """How errors name an image: its path, or `<image bytes>`."""
    return "<image bytes>" if isinstance(source, (bytes, bytearray, memoryview)) else os.fspath(source)


def decode_image(source: ImageSource) -> np.ndarray:
    """Decode an image file (path or encoded bytes) to a uint8 H x W x 3 RGB array.

    Grayscale, palette, CMYK and RGBA/LA images become RGB (alpha is dropped); EXIF
    orientation is ignored. Raises ImageDecodeError naming the file if it cannot be read.
    """
    name = source_name(source)
    fp = io.BytesIO(bytes(source)) if isinstance(source, (bytes, bytearray, memoryview)) else name
    try:
        with Image.open(fp) as im:
            im.load()  # decode now, so truncated files fail here and not later
            rgb = im if im.mode == "RGB" else im.convert("RGB")
            arr = np.asarray(rgb, dtype=np.uint8)
    except FileNotFoundError as exc:
        raise ImageDecodeError(name, "image file not found") from exc
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        # PIL.UnidentifiedImageError and "image file is truncated" are OSErrors.
        raise ImageDecodeError(name, f"cannot decode image: {exc}") from exc
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageDecodeError(name, f"decoded to unexpected shape {arr.shape}")
    return arr


def central_crop_box(height: int, width: int, fraction: float) -> tuple[int, int, int, int]:
    """(top, left, crop_height, crop_width) exactly as ``tf.image.central_crop`` computes them.

    TF: ``offset = int((h - h * fraction) / 2)`` in float64, ``size = h - 2 * offset``.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"central_fraction must be in (0, 1], got {fraction}")
    if fraction == 1.0:
        return 0, 0, height, width
    top = int((float(height) - float(height) * fraction) / 2)
    left = int((float(width) - float(width) * fraction) / 2)
    return top, left, height - 2 * top, width - 2 * left


def central_crop(img: np.ndarray, fraction: float) -> np.ndarray:
    """Keep the central ``fraction`` of height and width (a view, not a copy)."""
    top, left, h, w = central_crop_box(img.shape[0], img.shape[1], fraction)
    return img[top : top + h, left : left + w]


@functools.lru_cache(maxsize=256)
def _resize_weights(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lower, upper, lerp) per output index for TF1's legacy (corner-aligned-to-0) scaler.

    Mirrors ``compute_interpolation_weights`` in TF's ``resize_bilinear_op.cc`` in float32:
    ``scale = float(in) / out``, ``x = i * scale``, ``lower = floor(x)``,
    ``upper = min(ceil(x), in - 1)``, ``lerp = x - floor(x)``.
    """
    scale = np.float32(in_size) / np.float32(out_size)
    x = np.arange(out_size, dtype=np.float32) * scale
    x_floor = np.floor(x)
    lower = np.maximum(x_floor.astype(np.int64), 0)
    upper = np.minimum(np.ceil(x).astype(np.int64), in_size - 1)
    lerp = (x - x_floor).astype(np.float32)
    for a in (lower, upper, lerp):
        a.setflags(write=False)
    return lower, upper, lerp


def resize_bilinear_tf1(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of an H x W x C image with TF1 ``resize_bilinear`` semantics.

    ``align_corners=False``, ``half_pixel_centers=False``. Returns float32. The arithmetic
    order is TF's: interpolate along x in the two source rows, then along y.
    """
    if img.ndim != 3:
        raise ValueError(f"expected an H x W x C image, got shape {img.shape}")
    if height <= 0 or width <= 0:
        raise ValueError(f"output size must be positive, got {height} x {width}")
    y_lo, y_hi, y_lerp = _resize_weights(img.shape[0], height)
    x_lo, x_hi, x_lerp = _resize_weights(img.shape[1], width)
    # Horizontal pass over every source row (cheaper than over 2 x height rows when upscaling,
    # about equal for the usual ~1.5x downscale), then the vertical pass on whole rows. Gathering
    # before the float conversion and updating in place saves ~20 % over the naive expression.
    left = img[:, x_lo].astype(np.float32, copy=False)
    horiz = img[:, x_hi].astype(np.float32, copy=False)
    horiz -= left
    horiz *= x_lerp[None, :, None]
    horiz += left  # left + (right - left) * x_lerp
    top = horiz[y_lo]
    out = horiz[y_hi]
    out -= top
    out *= y_lerp[:, None, None]
    out += top  # top + (bottom - top) * y_lerp
    return out


def _size_hw(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def prepare_image(path: ImageSource, central_fraction: float, size: int | Sequence[int]) -> np.ndarray:
    """Decode, central-crop and resize one image: float32 H x W x 3 RGB in 0..255 pixel units.

    Values are not rounded: this is TF-Slim's [0, 1] float image times 255.
    """
    h, w = _size_hw(size)
    return resize_bilinear_tf1(central_crop(decode_image(path), central_fraction), h, w)


def smallest_side_size(height: int, width: int, smallest_side: int) -> tuple[int, int]:
    """(new_height, new_width) with the shorter side `smallest_side`, exactly as research/slim's
    ``_smallest_size_at_least`` computes it: float32 arithmetic, truncated to int32 (so a side can
    land one pixel short, e.g. 255 instead of 256)."""
    h, w, side = np.float32(height), np.float32(width), np.float32(smallest_side)
    scale = side / w if h > w else side / h
    return int(h * scale), int(w * scale)


def prepare_image_vgg(path: ImageSource, resize_side: int, size: int | Sequence[int]) -> np.ndarray:
    """The VGG recipe up to the mean subtraction: float32 H x W x 3 RGB in 0..255 pixel units."""
    h, w = _size_hw(size)
    image = decode_image(path)
    new_h, new_w = smallest_side_size(image.shape[0], image.shape[1], resize_side)
    if new_h < h or new_w < w:
        raise ImageDecodeError(source_name(path), f"resized to {new_h} x {new_w}, smaller than the {h} x {w} crop")
    resized = resize_bilinear_tf1(image, new_h, new_w)
    top, left = (new_h - h) // 2, (new_w - w) // 2
    return np.ascontiguousarray(resized[top : top + h, left : left + w])


def prepare(path: ImageSource, preprocessing) -> np.ndarray:
    """Decode, crop and resize one image by the model's recipe (a registry ``Preprocessing``):
    float32 size x size x 3 RGB in 0..255 pixel units. The mean and scale are the runtime's step
    (``to_nhwc_normalized`` for TensorFlow; the IR's PrePostProcessor for OpenVINO)."""
    if preprocessing.recipe == "vgg":
        return prepare_image_vgg(path, preprocessing.resize_side, preprocessing.size)
    if preprocessing.recipe == "inception":
        return prepare_image(path, preprocessing.central_fraction, preprocessing.size)
    raise ValueError(f"unknown preprocessing recipe {preprocessing.recipe!r}")


def _per_channel(value: MeanScale, what: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float32).reshape(-1)
    if arr.size not in (1, 3):
        raise ValueError(f"{what} must be a scalar or 3 per-channel values, got {value!r}")
    return arr


def _as_batch(batch_rgb: np.ndarray) -> np.ndarray:
    batch = np.asarray(batch_rgb)
    if batch.ndim == 3:
        batch = batch[None]
    if batch.ndim != 4 or batch.shape[-1] != 3:
        raise ValueError(f"expected N x H x W x 3 RGB images, got shape {batch.shape}")
    return batch


def to_nhwc_normalized(batch_rgb: np.ndarray, mean: MeanScale, scale: MeanScale) -> np.ndarray:
    """NHWC float32 ``(x - mean) / scale``: the TensorFlow graph's input.

    ``batch_rgb`` is N x H x W x 3 (or one H x W x 3 image) RGB in 0..255; ``mean`` and ``scale``
    are scalars or per-channel RGB triples (127.5 / 127.5 reproduces TF-Slim's ``(x - 0.5) * 2``).
    """
    batch = _as_batch(batch_rgb).astype(np.float32, copy=False)
    m = _per_channel(mean, "mean")
    s = _per_channel(scale, "scale")
    if np.any(s == 0):
        raise ValueError(f"scale must be non-zero, got {scale!r}")
    return np.ascontiguousarray((batch - m) / s, dtype=np.float32)


def to_nchw_bgr(batch_rgb: np.ndarray) -> np.ndarray:
    """NCHW float32 BGR in raw 0..255 units: the OpenVINO IR's input."""
    batch = _as_batch(batch_rgb)
    return np.ascontiguousarray(batch[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)
