"""Procedural "natural-looking" RGB images, made from a seed alone (no dataset, no download).

Used wherever omzconv needs realistic pixels without ImageNet: calibrating synthetic
checkpoints (``omzconv.synthetic``) and feeding the same images to TensorFlow and OpenVINO in
the converter's self-check.

Each image is a small scene built from the statistics natural photographs share:

* a background that is either a landscape (sky gradient over a textured ground, horizon at a
  random height) or a close-up texture; textures are 1/f^alpha ("pink") noise, whose power
  spectrum falls off like that of photographs (alpha around 2), sometimes stretched along one
  direction (grain, grass, waves);
* colours from a random palette: a texture is mapped through a ramp between two or three
  related colours, so the channels are strongly correlated, as in real scenes;
* several objects, usually one large one near the centre: soft-edged polygons, ellipses and
  irregular blobs, filled with their own texture, shaded by a light gradient, casting a soft
  shadow, overlapping and occluding each other;
* camera effects: defocus blur of the background or the whole image, vignetting, exposure,
  contrast, gamma, and a little sensor noise.

Image ``i`` depends only on ``(seed, i)``: ``natural_images(5, s, k)[:3]`` equals
``natural_images(3, s, k)``. NumPy and Pillow only; about 35 ms of CPU per 299 x 299 image.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

_SEED_TAG = 0x6F6D7A63  # "omzc": keeps these streams apart from other users of the same seed


def natural_images(n: int, size: int, seed: int) -> np.ndarray:
    """``n`` procedural scenes as uint8 ``[n, size, size, 3]`` RGB, the same for the same seed."""
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}")
    children = np.random.SeedSequence([_SEED_TAG, int(seed) % (1 << 64)]).spawn(n)
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i, child in enumerate(children):
        out[i] = _scene(np.random.default_rng(child), size)
    return out


# --- building blocks ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _frequency_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    return np.broadcast_to(fy, (size, fx.shape[1])), np.broadcast_to(fx, (size, fx.shape[1]))


def _pink_noise(rng: np.random.Generator, size: int, count: int) -> np.ndarray:
    """``count`` fields of 1/f^alpha noise, each zero-mean, unit-std, float32 [count, size, size].

    Every field gets its own exponent (1.7-3.1) and, sometimes, an orientation it is stretched
    along, so some look like clouds or rock and others like grain, bark or ripples.
    """
    fy, fx = _frequency_grid(size)
    fields = np.empty((count, size, size), dtype=np.float32)
    for k in range(count):
        alpha = rng.uniform(1.7, 3.1)
        if rng.random() < 0.35:  # anisotropic: squeeze frequencies along a random direction
            theta = rng.uniform(0, np.pi)
            stretch = rng.uniform(2.0, 6.0)
            u = fx * np.cos(theta) + fy * np.sin(theta)
            v = -fx * np.sin(theta) + fy * np.cos(theta)
            f2 = u * u * stretch + v * v / stretch
        else:
            f2 = fx * fx + fy * fy
        f2 = np.maximum(f2, 0.25 / (size * size))
        amplitude = f2 ** (-alpha / 4.0)  # power ~ f^-alpha  =>  amplitude ~ f^(-alpha/2)
        amplitude[0, 0] = 0.0
        spectrum = amplitude * (rng.standard_normal(f2.shape) + 1j * rng.standard_normal(f2.shape))
        field = np.fft.irfft2(spectrum, s=(size, size))
        field -= field.mean()
        field /= field.std() + 1e-12
        fields[k] = field
    return fields


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    i = int(h * 6.0) % 6
    f = h * 6.0 - int(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i], dtype=np.float32)


# Hue prior of natural scenes: mostly earth tones (browns, ochres), foliage greens, sky and water
# blues, plus some of everything else. Hue in 0..1 (0 red, 1/6 yellow, 1/3 green, 2/3 blue).
_HUES = np.array([0.05, 0.09, 0.13, 0.22, 0.30, 0.58, 0.62, 0.0, 0.8])
_HUE_WEIGHTS = np.array([0.20, 0.20, 0.14, 0.12, 0.10, 0.08, 0.04, 0.06, 0.06])
_HUE_SPREAD = np.array([0.03, 0.03, 0.03, 0.05, 0.05, 0.03, 0.04, 0.04, 0.15])


def _natural_hue(rng: np.random.Generator) -> float:
    k = rng.choice(len(_HUES), p=_HUE_WEIGHTS / _HUE_WEIGHTS.sum())
    return float(_HUES[k] + rng.normal(0, _HUE_SPREAD[k]))


def _random_colour(rng: np.random.Generator, hue: float | None = None) -> np.ndarray:
    """An RGB colour in 0..1 with the muted saturations and mid values photographs favour."""
    if hue is None:
        hue = _natural_hue(rng)
    saturation = rng.beta(1.5, 2.6)
    value = rng.beta(2.0, 1.8)
    return _hsv_to_rgb(hue % 1.0, saturation, value)


def _palette(rng: np.random.Generator) -> np.ndarray:
    """2-3 related colours (analogous hues, or a muted accent), spanning dark to light."""
    hue = _natural_hue(rng)
    count = int(rng.integers(2, 4))
    spread = rng.choice([0.02, 0.05, 0.1, 0.3])
    colours = [_random_colour(rng, hue + rng.normal(0, spread)) for _ in range(count)]
    colours.sort(key=lambda c: float(c @ np.array([0.299, 0.587, 0.114], dtype=np.float32)))
    colours[0] = colours[0] * rng.uniform(0.2, 0.8)  # shadows and dark parts
    colours[-1] = 1 - (1 - colours[-1]) * rng.uniform(0.3, 1.0)  # highlights
    return np.stack(colours).astype(np.float32)


def _colourize(field: np.ndarray, palette: np.ndarray, contrast: float) -> np.ndarray:
    """Map a unit-std field through a colour ramp: float32 [H, W, 3] in about 0..1."""
    t = np.clip(0.5 + field * (contrast * 0.5), 0.0, 1.0)
    if len(palette) == 2:
        return palette[0] + t[..., None] * (palette[1] - palette[0])
    low = np.clip(2 * t, 0.0, 1.0)[..., None]
    high = np.clip(2 * t - 1, 0.0, 1.0)[..., None]
    return palette[0] + low * (palette[1] - palette[0]) + high * (palette[2] - palette[1])


def _shifted(field: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same noise field seen from elsewhere: rolled, and maybe transposed or flipped."""
    out = np.roll(field, (int(rng.integers(field.shape[0])), int(rng.integers(field.shape[1]))), (0, 1))
    if rng.random() < 0.5:
        out = out.T
    if rng.random() < 0.5:
        out = out[::-1]
    return out


def _outline(rng: np.random.Generator, cx: float, cy: float, radius: float) -> list[tuple[float, float]]:
    """A closed outline around (cx, cy): ellipse, polygon, star-ish shape or smooth blob."""
    kind = rng.choice(["ellipse", "polygon", "blob", "blob", "rectangle"])
    angle = rng.uniform(0, 2 * np.pi)
    aspect = np.exp(rng.normal(0, 0.45))
    if kind == "polygon":
        k = int(rng.integers(3, 9))
        t = np.sort(rng.uniform(0, 2 * np.pi, k))
        r = radius * rng.uniform(0.6, 1.0, k)
    elif kind == "rectangle":
        t = np.array([0.25, 0.75, 1.25, 1.75]) * np.pi + rng.normal(0, 0.05, 4)
        r = np.full(4, radius)
    else:
        t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        r = np.full_like(t, radius)
        if kind == "blob":  # a few low harmonics make potato, leaf and cloud shapes
            for harmonic in range(2, 6):
                r *= 1 + rng.normal(0, 0.18 / harmonic) * np.cos(harmonic * t + rng.uniform(0, 2 * np.pi))
    x, y = r * np.cos(t) * aspect, r * np.sin(t) / aspect
    xr = cx + x * np.cos(angle) - y * np.sin(angle)
    yr = cy + x * np.sin(angle) + y * np.cos(angle)
    return list(zip(xr.tolist(), yr.tolist()))


def _soft_mask(size: int, outline: list[tuple[float, float]], blur: float) -> np.ndarray:
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).polygon(outline, fill=255)
    if blur > 0.3:
        mask = mask.filter(ImageFilter.GaussianBlur(blur))
    return np.asarray(mask, dtype=np.float32) * (1.0 / 255.0)


def _blur(img: np.ndarray, radius: float) -> np.ndarray:
    """Gaussian blur of a float 0..1 RGB image (through 8 bits: it is about to be quantized anyway)."""
    pil = Image.fromarray(np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8))
    return np.asarray(pil.filter(ImageFilter.GaussianBlur(radius)), dtype=np.float32) * (1.0 / 255.0)


# --- a scene ------------------------------------------------------------------------------------


def _background(rng: np.random.Generator, size: int, noise: np.ndarray) -> np.ndarray:
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]
    if rng.random() < 0.45:  # landscape: sky over ground
        horizon = rng.uniform(0.2, 0.75)
        sky_top = _hsv_to_rgb(rng.uniform(0.52, 0.68), rng.uniform(0.1, 0.7), rng.uniform(0.45, 1.0))
        if rng.random() < 0.2:  # dusk / overcast
            sky_top = _random_colour(rng)
        sky_bottom = np.clip(sky_top + rng.uniform(0.05, 0.35), 0, 1)
        sky = sky_top + (ramp / max(horizon, 1e-3)) * (sky_bottom - sky_top)
        clouds = np.clip(_shifted(noise[0], rng) * 0.5 + rng.uniform(-0.6, 0.4), 0, 1)[..., None]
        sky = sky + clouds * rng.uniform(0.0, 0.5) * (1 - sky)
        ground = _colourize(_shifted(noise[1], rng), _palette(rng), rng.uniform(0.5, 1.6))
        ground *= (0.65 + 0.35 * np.clip((ramp - horizon) / (1 - horizon), 0, 1))  # depth shading
        wobble = 0.04 * _shifted(noise[2], rng)[0][None, :, None]
        edge = np.clip((ramp - horizon - wobble) * size / rng.uniform(1.0, 6.0), 0, 1)
        return sky * (1 - edge) + ground * edge
    base = _colourize(_shifted(noise[0], rng), _palette(rng), rng.uniform(0.4, 1.8))
    if rng.random() < 0.5:  # a second texture region (wall / floor, water / shore)
        region = _colourize(_shifted(noise[1], rng), _palette(rng), rng.uniform(0.4, 1.6))
        split = np.clip(_shifted(noise[2], rng) * rng.uniform(1.0, 4.0), -1, 1) * 0.5 + 0.5
        base = base * split[..., None] + region * (1 - split[..., None])
    return base


def _scene(rng: np.random.Generator, size: int) -> np.ndarray:
    noise = _pink_noise(rng, size, 4)
    img = _background(rng, size, noise)
    if rng.random() < 0.4:  # shallow depth of field: background out of focus
        img = _blur(img, rng.uniform(1.0, 5.0) * size / 299)

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    count = int(rng.integers(1, 7))
    main = int(rng.integers(count)) if rng.random() < 0.75 else -1
    order = rng.permutation(count)  # paint order: later objects occlude earlier ones
    for k in order:
        if k == main:  # a large subject near the centre, as in most ImageNet-style photos
            cx, cy = rng.normal(0.5, 0.1, 2) * size
            radius = rng.uniform(0.18, 0.42) * size
        else:
            cx, cy = rng.uniform(-0.1, 1.1, 2) * size
            radius = size * np.exp(rng.uniform(np.log(0.04), np.log(0.3)))
        outline = _outline(rng, cx, cy, radius)
        edge_blur = rng.uniform(0.4, 2.5) * size / 299
        mask = _soft_mask(size, outline, edge_blur)
        rows, cols = np.nonzero(mask.max(axis=1) > 0.0)[0], np.nonzero(mask.max(axis=0) > 0.0)[0]
        if rows.size == 0 or mask.max() < 0.05:
            continue
        if rng.random() < 0.6:  # soft shadow beside the object
            dx, dy = (int(v) for v in rng.normal(0, 0.03, 2) * size)
            shadow = np.roll(_soft_mask(size, outline, edge_blur * 4 + 2), (dy, dx), (0, 1))
            img *= 1 - shadow[..., None] * rng.uniform(0.15, 0.5)
        # The rest only touches the object's bounding box.
        box = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        x, y = xx[box], yy[box]
        field = _shifted(noise[3 if k % 2 else 2], rng)[box]
        texture = _colourize(field, _palette(rng), rng.uniform(0.2, 1.5))
        if rng.random() < 0.25:  # stripes or bands (fur, fabric, fences)
            freq = rng.uniform(4, 30)
            theta = rng.uniform(0, np.pi)
            bands = np.sin(2 * np.pi * freq * (x * np.cos(theta) + y * np.sin(theta)) + rng.uniform(0, 6.3))
            texture *= (1 - rng.uniform(0.2, 0.6) * (bands > rng.uniform(-0.5, 0.5)))[..., None]
        theta = rng.uniform(0, 2 * np.pi)  # lighting: brighter on one side
        slope = rng.uniform(0.1, 0.6) * size / max(radius, 1.0)
        light = 1 + slope * ((x - cx / size) * np.cos(theta) + (y - cy / size) * np.sin(theta))
        texture *= np.clip(light, 0.3, 1.6)[..., None]
        alpha = mask[box][..., None] * rng.uniform(0.85, 1.0)
        img[box] = img[box] * (1 - alpha) + texture * alpha

    if rng.random() < 0.15:  # the whole frame slightly out of focus
        img = _blur(img, rng.uniform(0.5, 1.8) * size / 299)
    if rng.random() < 0.5:  # vignetting
        r2 = (xx - 0.5) ** 2 + (yy - 0.5) ** 2
        img *= (1 - rng.uniform(0.1, 0.6) * r2 * 2)[..., None]
    if rng.random() < 0.2:  # a colour cast (white balance)
        img *= np.exp(rng.normal(0, 0.08, 3)).astype(np.float32)
    # exposure, contrast and gamma, then sensor noise
    mean = float(img.mean())
    img = (img - mean) * np.exp(rng.normal(0.2, 0.25)) + mean * np.exp(rng.normal(0, 0.25))
    img = np.clip(img, 0, 1) ** np.exp(rng.normal(0, 0.15))
    img += rng.normal(0, rng.uniform(0.0, 0.02), img.shape).astype(np.float32)
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
