"""Benchmarks that measure mcdropout against published results.

Each runner is a script (``python benchmarks/<name>.py --help``) and an
importable module, so its protocol can be tested.
"""
