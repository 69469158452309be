"""The ``mcdropout`` command line: ``report``, ``predict`` and ``train``."""

from mcdropout.cli._main import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, build_parser, main

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]
