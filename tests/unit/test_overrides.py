import pytest

from metapt.overrides import apply_overrides, parse_pairs


def test_dotted_overrides_parse_yaml_values_and_nest():
    tree = apply_overrides({"a": {"b": 1}}, ["a.b=2", "a.c.d=[1, 2]", "e=rms"])
    assert tree == {"a": {"b": 2, "c": {"d": [1, 2]}}, "e": "rms"}
    with pytest.raises(ValueError, match="'oops' is not KEY=VALUE"):
        parse_pairs(["oops"])
