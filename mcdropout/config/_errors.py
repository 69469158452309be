"""The error every config problem is reported as."""

from mcdropout._exceptions import ArgumentValueError

__all__ = ["ConfigError"]


class ConfigError(ArgumentValueError):
    """A config file, a ``--set`` override or a value in them is not accepted.

    Parameters
    ----------
    problems : list of str
        One line per problem, each starting with the YAML key path, e.g.
        ``"mc.n_passes: expected a positive integer, got -3"``.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))
