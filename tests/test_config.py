"""Typed configs: loading, overrides, and the error for each kind of bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from ttedge.config import apply_overrides, load_config, to_toml
from ttedge.errors import ConfigError
from ttedge.train import RunConfig


def test_every_shipped_config_loads_and_round_trips(configs_dir: Path, tmp_path: Path) -> None:
    paths = sorted(configs_dir.glob("*.toml"))
    assert {p.name for p in paths} >= {"digits_tt.toml", "mnist_tt.toml", "mnist_dense.toml"}
    for path in paths:
        cfg = load_config(RunConfig, path)
        copy = tmp_path / path.name
        copy.write_text(to_toml(cfg))
        assert load_config(RunConfig, copy) == cfg


def test_overrides_are_typed() -> None:
    cfg = load_config(RunConfig, None, ["--train.epochs=3", "--train.lr=0.5", "--model.ranks=[[2, 2], [3]]",
                                        "--data.name=mnist", "--data.download=true", "--name=x y"])
    assert cfg.train.epochs == 3 and cfg.train.lr == 0.5
    assert cfg.model.ranks == [[2, 2], [3]]
    assert cfg.data.name == "mnist" and cfg.data.download is True and cfg.name == "x y"
    # An integer is a fine value for a float field.
    assert load_config(RunConfig, None, ["--train.lr=1"]).train.lr == 1.0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["--train.epoch=3"], r"^unknown key train\.epoch; the keys of \[train\] are: batch_size, checkpoint_every, epochs, label_smoothing, lr, lr_schedule, momentum, optimizer, seed, threads, weight_decay\.$"),
        (["--train.epochs=three"], r"^train\.epochs must be an integer, got 'three' \(str\)\.$"),
        (["--train.epochs=2.5"], r"^train\.epochs must be an integer, got 2\.5 \(float\)\.$"),
        (["--train.optimizer=rmsprop"], r"^train\.optimizer must be one of adam, adamw, sgd, got 'rmsprop'\.$"),
        (["--train.epochs=0"], r"^train\.epochs must be at least 1, got 0\.$"),
        (["--model.ranks=[4, 4]"], r"^model\.ranks must be a list of lists of integers, got \[4, 4\] \(list\)\.$"),
        (["--train.label_smoothing=1.5"], r"^train\.label_smoothing must be at most 1, got 1\.5\.$"),
        (["--train=3"], r"^\[train\] must be a table, got 3\.$"),
        (["--bogus=1"], r"^unknown key bogus; the keys of the top level are: bayes, data, fixed, hw, memory, model, name, out_dir, report, train\.$"),
        (["train.epochs=3"], r"^cannot read override 'train\.epochs=3'; write it as --section\.key=value\.$"),
        (['--report.targets=["ice40"]'], r"^report\.targets: unknown synthesis target\(s\) \['ice40'\]; use ecp5, xcup and/or up5k\.$"),
    ],
)
def test_bad_values_are_refused_with_one_sentence(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(RunConfig, None, overrides)


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^config file .*nope\.toml does not exist; pass the path of a TOML file such as configs/digits_tt\.toml\.$"):
        load_config(RunConfig, tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nepochs = 3\n")
    with pytest.raises(ConfigError, match=r"^config file .*bad\.toml is not valid TOML \(.*\); fix the syntax at that spot\.$"):
        load_config(RunConfig, bad)


def test_override_into_a_value_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^cannot set --name\.x: name is a value, not a table\.$"):
        apply_overrides({"name": "a"}, ["--name.x=1"])


def test_fixed_scale_rule_comes_from_the_config() -> None:
    from ttedge.fixed import PrecisionConfig, ScaleRule

    assert load_config(RunConfig, None).fixed.precision().scale == PrecisionConfig().scale  # the defaults are the rule's
    rule = load_config(RunConfig, None, ["--fixed.scale_down_after=256", "--fixed.scale_max_step=1"]).fixed.precision().scale
    assert rule == ScaleRule(down_after=256, max_step=1)
    with pytest.raises(ConfigError, match="fixed.scale_up_after must be at least 1"):
        load_config(RunConfig, None, ["--fixed.scale_up_after=0"])
