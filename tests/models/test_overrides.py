"""models/overrides.py: a checkpoint's config rebuilt with --model_overrides, its class's checks run."""

import pytest

from mars_segformer.models.overrides import config_with_overrides
from mars_segformer.models.unet import MarsUNetConfig


def test_overrides_make_a_new_config_and_leave_the_old_one():
    old = MarsUNetConfig(base_channels=8, depth=3)
    new = config_with_overrides(old, {"depth": 2}, "the UNet config")
    assert (new.depth, new.base_channels, old.depth) == (2, 8, 3)
    assert new is not old and type(new) is MarsUNetConfig


@pytest.mark.parametrize("overrides, line", [
    ({"nope": 1}, "--model_overrides: the UNet config has no field 'nope'"),
    ({"depth": 0}, "--model_overrides: the UNet config rejects them: depth must be >= 1, got 0"),
    ({"block_type": "fancy"}, "--model_overrides: the UNet config rejects them: block_type must be 'plain' or "
                              "'residual', got 'fancy'"),
])
def test_what_the_config_cannot_take_is_one_line(overrides, line):
    with pytest.raises(ValueError) as err:
        config_with_overrides(MarsUNetConfig(), overrides, "the UNet config")
    assert str(err.value) == line
