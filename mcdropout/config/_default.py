"""The embedded default config, identical to ``configs/digits.yaml``.

It is kept as text in the package so that ``mcdropout report`` runs on an
installed wheel too, where the repository's ``configs/`` folder is absent.
"""

__all__ = ["DEFAULT_CONFIG_NAME", "DEFAULT_CONFIG_TEXT"]

DEFAULT_CONFIG_NAME = "digits"

DEFAULT_CONFIG_TEXT = """\
# The embedded default: scikit-learn's 8x8 digits (1797 images, 10 classes,
# bundled, no download), an MLP with dropout trained on a CPU in seconds,
# Monte Carlo dropout with T = 50 passes, temperature scaling fitted on a
# validation split, and how confidence degrades as the test images are
# blurred with noise or rotated. `mcdropout report` runs this file.
name: digits
model:
  architecture: mlp
  args:
    hidden_sizes: [256, 128]
    dropout: 0.3
  train:
    epochs: 60
    batch_size: 64
    lr: 0.001
    weight_decay: 0.0001
    seed: 0
data:
  source: sklearn
  name: digits
  split:
    val: 0.15
    test: 0.25
    seed: 0
mc:
  n_passes: 50
  seed: 0
calibration:
  enabled: true
ood:
  shifts:
    - kind: gaussian_noise
      severities: [0.1, 0.25, 0.5]
    - kind: rotation
      severities: [10, 20, 30]
report:
  n_bins: 15
"""
