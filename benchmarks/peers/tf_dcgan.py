"""The TensorFlow MNIST tutorial's DCGAN `train_step` (a `tf.function`), timed: prints one JSON line.

    pip install -e ".[peers]"    # torch and tensorflow: an optional extra, never installed by CI
    python -m benchmarks.peers.tf_dcgan [--batch-size 256] [--steps 10]

This is the tutorial's own step, as issue 4 timed it: one G forward, D on real and on fake, both
models' gradients from the same forward (simultaneous, not alternating), Adam(1e-4) each. It does
one D pass fewer than the alternating step gan_jax and `torch_dcgan.py` run, so it is the
tutorial's cost, not the same function. Compare with `gan-jax bench --models dcgan --batch-sizes 256`.
"""

from __future__ import annotations

import argparse
import json
import time


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args(argv)
    import tensorflow as tf
    from tensorflow.keras import layers

    tf.random.set_seed(0)
    generator = tf.keras.Sequential([
        layers.Input((100,)), layers.Dense(7 * 7 * 256, use_bias=False), layers.BatchNormalization(), layers.LeakyReLU(0.3),
        layers.Reshape((7, 7, 256)),
        layers.Conv2DTranspose(128, 5, 1, padding="same", use_bias=False), layers.BatchNormalization(), layers.LeakyReLU(0.3),
        layers.Conv2DTranspose(64, 5, 2, padding="same", use_bias=False), layers.BatchNormalization(), layers.LeakyReLU(0.3),
        layers.Conv2DTranspose(1, 5, 2, padding="same", use_bias=False, activation="tanh")])
    discriminator = tf.keras.Sequential([
        layers.Input((28, 28, 1)), layers.Conv2D(64, 5, 2, padding="same"), layers.LeakyReLU(0.3), layers.Dropout(0.3),
        layers.Conv2D(128, 5, 2, padding="same"), layers.LeakyReLU(0.3), layers.Dropout(0.3),
        layers.Flatten(), layers.Dense(1)])
    bce = tf.keras.losses.BinaryCrossentropy(from_logits=True)
    g_opt, d_opt = tf.keras.optimizers.Adam(1e-4), tf.keras.optimizers.Adam(1e-4)
    images = tf.random.uniform((args.batch_size, 28, 28, 1), -1.0, 1.0)

    @tf.function
    def train_step(images):
        noise = tf.random.normal([args.batch_size, 100])
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated = generator(noise, training=True)
            real_output = discriminator(images, training=True)
            fake_output = discriminator(generated, training=True)
            gen_loss = bce(tf.ones_like(fake_output), fake_output)
            disc_loss = bce(tf.ones_like(real_output), real_output) + bce(tf.zeros_like(fake_output), fake_output)
        g_opt.apply_gradients(zip(gen_tape.gradient(gen_loss, generator.trainable_variables),
                                  generator.trainable_variables))
        d_opt.apply_gradients(zip(disc_tape.gradient(disc_loss, discriminator.trainable_variables),
                                  discriminator.trainable_variables))
        return disc_loss

    start = time.perf_counter()
    train_step(images).numpy()
    first_s = time.perf_counter() - start
    train_step(images).numpy()
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = train_step(images)
    loss.numpy()
    ms = 1000 * (time.perf_counter() - start) / args.steps
    print(json.dumps({"impl": "tensorflow tf.function (tutorial step)", "tensorflow": tf.__version__,
                      "batch_size": args.batch_size, "timed_steps": args.steps, "first_step_s": round(first_s, 2),
                      "ms_per_step": round(ms, 1)}))


if __name__ == "__main__":
    main()
