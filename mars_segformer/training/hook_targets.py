"""Where a training-only regularising hook goes (``--head_dropout``, ``--drop_path``): the checks both flags share."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn


def hook_targets(model: nn.Module, value: float, flag: str, find: Callable[[nn.Module], list[nn.Module]],
                 does: str, elsewhere: str) -> list[nn.Module]:
    """The modules of ``model`` that ``flag``'s hook goes on; none where ``value`` is 0.

    Args:
        model: the model to train.
        value: the flag's probability, in [0, 1).
        flag: the flag's name, for the errors.
        find: the modules the hook goes on (an empty list for a model without them).
        does: what the hook does, for the error about a model without them.
        elsewhere: where such a model has its own setting.

    Raises:
        ValueError: ``value`` outside [0, 1), or a model without the modules.
    """
    if not 0 <= value < 1:
        raise ValueError(f"{flag} must lie in [0, 1), got {value}")
    if value == 0:
        return []
    found = find(model)
    if not found:
        raise ValueError(f"{flag} {value}: {does}, and this model is a {type(model).__name__} ({elsewhere})")
    return found
