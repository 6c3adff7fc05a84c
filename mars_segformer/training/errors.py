"""The error of arguments that cannot start a run (light: no torch, so checks can run before it)."""


class RunError(ValueError):
    """Arguments that cannot start a run; raised before anything is written."""
