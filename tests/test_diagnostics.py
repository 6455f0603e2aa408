"""deepsquare train --diagnostics: one row per step, the values the square modules act through, kept on resume."""

import csv
import math
from pathlib import Path

import pytest

from deepsquare.train.checkpoint import Checkpoint
from deepsquare.train.trainer import TrainConfig, train

SMALL = {
    "arch": "shufflenetv2_x0_5",
    "variant": "sp+ss+sex",
    "data": "synthetic:128",
    "batch_size": 32,
    "input_size": 16,
    "lr": 0.05,
    "diagnostics": True,
}


def rows(out: Path) -> list[dict[str, str]]:
    with open(out / "diagnostics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_a_row_per_step_with_the_initial_scalars_and_consistent_gradient_norms(tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(TrainConfig(**SMALL, epochs=2, ss_init=0.25, sex_alpha=0.3, out=str(out)), quiet=True)
    table = rows(out)
    steps = 128 // 32
    assert [(int(r["epoch"]), int(r["step"])) for r in table] == [(e, s) for e in (1, 2) for s in range(1, steps + 1)]
    first = table[0]
    # recorded after backward, before the first optimizer step: the scalars are still their initial values
    assert float(first["ss_scale"]) == pytest.approx(0.25, abs=1e-6)
    assert float(first["sex_alpha_mean"]) == pytest.approx(0.3, abs=1e-6)
    for r in table:
        assert 0 <= float(r["sex_gate_min"]) <= float(r["sex_gate_mean"]) < 1  # s = G / (G + alpha^2)
        assert float(r["pooled_mean"]) >= 0  # Square-Pooling is a mean of squares
        assert float(r["logit_range"]) >= 0 and math.isfinite(float(r["loss"]))
        parts = [float(v) for k, v in r.items() if k.startswith("grad_") and k != "grad_total" and v]
        assert {"grad_stage2", "grad_stage4", "grad_fc", "grad_softmin"} <= set(r)
        assert math.sqrt(sum(p * p for p in parts)) == pytest.approx(float(r["grad_total"]), rel=1e-4)
    # the run trained the scalars it started from
    state = Checkpoint.load(out / "model.ckpt").state_dict
    assert abs(float(state["softmin.scale"].abs())) != pytest.approx(0.25, abs=1e-7)


def test_a_resumed_run_keeps_the_rows_of_its_finished_epochs(tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(TrainConfig(**SMALL, epochs=1, out=str(out)), quiet=True)
    before = rows(out)
    train(TrainConfig(**SMALL, epochs=2, out=str(out)), quiet=True, resume=True)
    after = rows(out)
    assert after[: len(before)] == before and len(after) == 2 * len(before)
    assert {int(r["epoch"]) for r in after[len(before) :]} == {2}


def test_no_file_without_the_flag_and_bad_initial_values_are_refused(tmp_path: Path) -> None:
    out = tmp_path / "plain"
    train(TrainConfig(**{**SMALL, "diagnostics": False}, epochs=1, out=str(out)), quiet=True)
    assert not (out / "diagnostics.csv").exists()
    with pytest.raises(ValueError, match="--ss-init must be a finite number > 0"):
        TrainConfig(ss_init=0.0).validate()
    with pytest.raises(ValueError, match="--sex-alpha must be a finite number >= 0"):
        TrainConfig(sex_alpha=float("nan")).validate()


def test_the_square_modules_start_from_the_configured_values() -> None:
    from deepsquare.train.layers import SquareExcitation
    from deepsquare.train.models import build_from_spec
    from deepsquare.train.run_state import init_square_modules

    config = TrainConfig(variant="sp+ss+sex", ss_init=0.5, ss_offset=0.75, sex_alpha=0.2)
    model = init_square_modules(build_from_spec(config.resolved().model_spec(10)), config)
    assert model.softmin.scale.tolist() == [0.5] and model.fc.bias.tolist() == [0.75] * 10
    alphas = [m.alpha.item() for m in model.modules() if isinstance(m, SquareExcitation)]
    assert len(alphas) == 16 and all(a == pytest.approx(0.2) for a in alphas)  # one per ShuffleNetV2 x0.5 unit
    plain = TrainConfig(variant="gap", ss_offset=0.75)
    gap = init_square_modules(build_from_spec(plain.resolved().model_spec(10)), plain)
    assert not (gap.fc.bias == 0.75).any()  # the offset belongs to the Square-Softmin head only


def test_a_zero_ss_lr_scale_keeps_the_scale_fixed_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "fixed"
    config = {**SMALL, "variant": "ss", "ss_init": 0.5, "ss_lr_scale": 0.0, "diagnostics": False}
    train(TrainConfig(**config, epochs=1, out=str(out)), quiet=True)
    train(TrainConfig(**config, epochs=2, out=str(out)), quiet=True, resume=True)  # the optimizer's 3 groups reload
    state = Checkpoint.load(out / "model.ckpt").state_dict
    assert state["softmin.scale"].tolist() == [0.5]
    with pytest.raises(ValueError, match="--ss-lr-scale must be a finite number >= 0"):
        TrainConfig(ss_lr_scale=-1.0).validate()
