"""Write a dataset of the table as a class-folder tree of PNG files (`folder:` input for gan_jax).

    python -m scripts.write_png_folder OUT [--dataset mnist] [--train 6000] [--test 1000]

Writes `OUT/train/<class>/<index>.png` and `OUT/test/<class>/<index>.png`: the first `--train`
training and `--test` test images, as stored (28×28 grey for MNIST). Real images available offline,
for measuring the `folder:` path (e.g. a 64 px DCGAN with `--image-size 64`).
"""

from __future__ import annotations

import argparse
import pathlib

from PIL import Image

from gan_jax import data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--train", type=int, default=6000)
    parser.add_argument("--test", type=int, default=1000)
    args = parser.parse_args()
    for split, count in (("train", args.train), ("test", args.test)):
        images, labels = data.load(args.dataset, split)
        if labels is None:
            raise SystemExit(f"{args.dataset} has no labels")
        for index, (image, label) in enumerate(zip(images[:count], labels[:count], strict=True)):
            folder = args.out / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            picture = image[..., 0] if image.shape[-1] == 1 else image
            Image.fromarray(picture).save(folder / f"{index:05d}.png")
    print(f"wrote {args.train} + {args.test} PNG files of {args.dataset} under {args.out}")


if __name__ == "__main__":
    main()
