"""``--model_overrides`` applied to a loaded checkpoint's config.

Setting the fields on a built config skips the checks its ``__init__`` makes (a UNet ``depth`` of 0, ...): the
run then trains and fails only when the saved model is read back. Building the config again from its dict with the
overrides merged runs those checks before anything trains.
"""

from __future__ import annotations

from transformers import PretrainedConfig


def config_with_overrides(config: PretrainedConfig, overrides: dict | None, what: str) -> PretrainedConfig:
    """A new config of ``config``'s class: its fields with ``overrides`` merged in, built by the class itself.

    Args:
        what: the config as the error line names it (``"the UperNet config"``, ``"X's mars_unet config"``).

    Raises:
        ValueError: one line naming ``--model_overrides``: a field ``config`` does not have (the first such), or the
            class's own message when it rejects the values.
    """
    overrides = dict(overrides or {})
    if not overrides:
        return config
    unknown = [k for k in overrides if not hasattr(config, k)]
    if unknown:
        raise ValueError(f"--model_overrides: {what} has no field {unknown[0]!r}")
    try:
        return type(config).from_dict({**config.to_dict(), **overrides})
    except (TypeError, ValueError) as err:  # TypeError: e.g. a value of the wrong type reaching a check
        raise ValueError(f"--model_overrides: {what} rejects them: {str(err).splitlines()[0]}") from None
