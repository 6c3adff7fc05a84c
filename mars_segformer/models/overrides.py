"""``--model_overrides`` applied to a loaded checkpoint's config.

Setting the fields on a built config skips the checks its ``__init__`` makes (a UNet ``depth`` of 0, ...): the
run then trains and fails only when the saved model is read back. Building the config again from its dict with the
overrides merged runs those checks before anything trains.
"""

from __future__ import annotations

from transformers import PretrainedConfig


def config_with_overrides(config: PretrainedConfig, overrides: dict | None) -> PretrainedConfig:
    """A new config of ``config``'s class: its fields with ``overrides`` merged in, built by the class itself.

    Raises:
        KeyError: an override names a field the config does not have (the first such name).
        ValueError: the config's class rejects the values (its own message).
    """
    overrides = dict(overrides or {})
    if not overrides:
        return config
    unknown = [k for k in overrides if not hasattr(config, k)]
    if unknown:
        raise KeyError(unknown[0])
    try:
        return type(config).from_dict({**config.to_dict(), **overrides})
    except TypeError as err:  # e.g. a value of the wrong type reaching a check
        raise ValueError(str(err)) from None
