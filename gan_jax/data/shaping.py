"""Images brought to the shape a run asks for: centre crop, resize, channels (NumPy and Pillow).

`--image-size S` makes every image S×S: the largest centred square is cropped and resized with a
Lanczos filter (antialiased when shrinking). `--channels 1|3` converts grey to colour (the grey
value in each channel) or colour to grey (ITU-R 601-2 luma, Pillow's 'L'). Both happen once, when
a dataset is first read; `gan_jax.data.loading` caches the result.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from gan_jax.errors import ConfigError

MIN_IMAGE_SIZE = 8
MAX_IMAGE_SIZE = 256


def check_shape_request(image_size: int | None, channels: int | None) -> None:
    """ConfigError unless `image_size` is None or an integer in 8..256, and `channels` is None, 1
    or 3."""
    if image_size is not None and (
        isinstance(image_size, bool)
        or not isinstance(image_size, int)
        or not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE
    ):
        raise ConfigError(
            f"image_size must be an integer in {MIN_IMAGE_SIZE}..{MAX_IMAGE_SIZE}, got "
            f"{image_size!r}; pass e.g. --image-size 28, 32 or 64"
        )
    if channels is not None and (isinstance(channels, bool) or channels not in (1, 3)):
        raise ConfigError(
            f"channels must be 1 (grey) or 3 (colour), got {channels!r}; pass --channels 1 or 3"
        )


def shaped_shape(
    shape: tuple[int, int, int], image_size: int | None, channels: int | None
) -> tuple[int, int, int]:
    """The `(H, W, C)` that `shape_images` makes of images of `shape`."""
    height, width, depth = shape
    if image_size is not None:
        height = width = image_size
    return (height, width, channels or depth)


def shape_images(images: np.ndarray, image_size: int | None, channels: int | None) -> np.ndarray:
    """uint8 `[N, H, W, C]` (C 1 or 3) → uint8 `[N, S, S, C']`: centre-cropped to a square and
    resized to `image_size` S (None: H, W kept), converted to `channels` C' (None: C kept).
    Returns `images` itself when nothing changes."""
    target = shaped_shape(images.shape[1:], image_size, channels)
    if target == images.shape[1:]:
        return images
    return np.stack([shape_image(image, image_size, channels) for image in images])


def shape_image(image: np.ndarray, image_size: int | None, channels: int | None) -> np.ndarray:
    """One uint8 `[H, W, C]` image as `shape_images` shapes it."""
    picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    return to_array(picture, image_size, channels or image.shape[-1])


def to_array(picture: Image.Image, image_size: int | None, channels: int) -> np.ndarray:
    """A decoded picture as uint8 `[H, W, channels]` (grey or RGB; alpha dropped), centre-cropped
    and resized to `image_size` when given."""
    picture = picture.convert("L" if channels == 1 else "RGB")
    if image_size is not None and picture.size != (image_size, image_size):
        width, height = picture.size
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        square = picture.crop((left, top, left + side, top + side))
        picture = square.resize((image_size, image_size), Image.Resampling.LANCZOS)
    array = np.asarray(picture, np.uint8)
    return array[..., None] if channels == 1 else array
