"""The TensorFlow MNIST tutorial's DCGAN `train_step` (a `tf.function`), timed: prints one JSON line.

    pip install -e ".[peers]"    # torch and tensorflow: an optional extra, never installed by CI
    python -m benchmarks.peers.tf_dcgan [--batch-size 256] [--steps 10] [--alternating]

By default this is the tutorial's own step, as issue 4 timed it: one G forward, D on real and on
fake, both models' gradients from the same forward (simultaneous), Adam(1e-4) each: one D pass
fewer than gan_jax's step, so it is the tutorial's cost, not the same function. `--alternating`
times the seed's step, the one gan_jax and `torch_dcgan.py` run: D's update, then G's update on
the same noise through a new G and D forward. Compare with
`gan-jax bench --models dcgan --batch-sizes 256`; `benchmarks/cpu_peers.py` runs them together.
"""

from __future__ import annotations

import argparse
import json
import time


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--alternating", action="store_true", help="the seed's alternating step")
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

    @tf.function
    def alternating_step(images):
        noise = tf.random.normal([args.batch_size, 100])
        with tf.GradientTape() as disc_tape:
            generated = generator(noise, training=True)
            real_output = discriminator(images, training=True)
            fake_output = discriminator(generated, training=True)
            disc_loss = bce(tf.ones_like(real_output), real_output) + bce(tf.zeros_like(fake_output), fake_output)
        d_opt.apply_gradients(zip(disc_tape.gradient(disc_loss, discriminator.trainable_variables),
                                  discriminator.trainable_variables))
        with tf.GradientTape() as gen_tape:
            fake_output = discriminator(generator(noise, training=True), training=True)
            gen_loss = bce(tf.ones_like(fake_output), fake_output)
        g_opt.apply_gradients(zip(gen_tape.gradient(gen_loss, generator.trainable_variables),
                                  generator.trainable_variables))
        return disc_loss

    step = alternating_step if args.alternating else train_step
    start = time.perf_counter()
    step(images).numpy()
    first_s = time.perf_counter() - start
    step(images).numpy()
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = step(images)
    loss.numpy()
    ms = 1000 * (time.perf_counter() - start) / args.steps
    print(json.dumps({"impl": f"tensorflow tf.function ({'alternating' if args.alternating else 'tutorial'} step)", "tensorflow": tf.__version__,
                      "batch_size": args.batch_size, "timed_steps": args.steps, "first_step_s": round(first_s, 2),
                      "ms_per_step": round(ms, 1)}))


if __name__ == "__main__":
    main()
