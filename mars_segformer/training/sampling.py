"""Defaults of the tile-sampling flags that depend on the user's other flags."""

from __future__ import annotations

from .flags import flag_value, given_flags


def sampling_defaults(argv: list[str]) -> list[str]:
    """Flags to put before the user's (so theirs win) for the way training tiles are repeated.

    The default recipe repeats tiles by LVIS repeat-factor sampling (``--repeat_factor_threshold
    0.3``). ``--oversample_big_rock N`` is the other way of repeating tiles (the reference recipe's
    x15) and the two do not mix, so giving it without ``--repeat_factor_threshold`` turns
    repeat-factor sampling off; giving both is refused by :mod:`.ranges`.
    """
    copies = flag_value(argv, "oversample_big_rock")
    if copies is None or copies.strip() == "1" or "repeat_factor_threshold" in given_flags(argv):
        return []
    return ["--repeat_factor_threshold", "0"]
