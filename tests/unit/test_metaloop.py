"""Algorithm 1: schedule, baseline parity, resume determinism, NaN handling, checkpoints."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from metapt.engine import BatchStream, HypergradConfig, MetaLoopConfig, MetaPretrainer, NonFiniteError
from metapt.engine.agnostic import TaskSplit
from metapt.engine.checkpoint import load_checkpoint
from metapt.records import PhiTrajectory
from tests.unit.toys import AgnosticMLP, MLPMultitask, multitask_data, stack

BASE = dict(epochs=3, warmup_epochs=1, hyper_every=3, pt_lr=1e-2, ft_head_lr=1e-2, meta_lr=0.1, checkpoint_every=1, snapshot_every=2)


def make_trainer(tmp=None, data=None, hooks=(), problem=None, **overrides):
    problem = problem or MLPMultitask(seed=0)
    data = data or multitask_data(n=96)
    cfg = MetaLoopConfig(**{**BASE, "hypergrad": HypergradConfig(normalise="rms"), **overrides})
    streams = [BatchStream(data[:64], 8, seed=1, collate=stack), BatchStream(data[64:80], 8, seed=2, collate=stack), BatchStream(data[80:], 8, seed=3, collate=stack)]
    return MetaPretrainer(problem, *streams, cfg, checkpoint_dir=tmp, hooks=hooks, progress=False)


def final_state(trainer):
    return [t.detach().clone() for t in trainer.problem.theta()] + [p.detach().clone() for p in trainer.problem.phi()]


def assert_bit_identical(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert torch.equal(x, y)


def test_schedule_hyper_steps_follow_global_counter():
    records = []
    trainer = make_trainer(hooks=[records.append]).run()
    spe = trainer.steps_per_epoch
    hyper = [r.step for r in records if r.hyper]
    assert hyper == [s for s in range(spe + 1, 3 * spe + 1) if s % 3 == 0]
    assert all(r.hypergrad_norm > 0 and math.isfinite(r.hypergrad_norm) for r in records if r.hyper)
    assert all(r.ft_loss is not None for r in records if not r.hyper)  # online FT head on the others
    assert trainer.head_state.step == sum(not r.hyper for r in records) + trainer.hyper_steps  # K = 1
    converged = make_trainer(hyper_head_steps=5).run()
    assert converged.ft_train_stream.position == trainer.ft_train_stream.position + 5 * converged.hyper_steps
    assert not torch.equal(trainer.problem.meta.logits, torch.zeros_like(trainer.problem.meta.logits))


def test_online_head_at_hyper_steps_takes_as_many_head_steps_without_extra_batches():
    records = []
    trainer = make_trainer(hooks=[records.append], online_head="at_hyper_steps").run()
    spe, n_hyper = trainer.steps_per_epoch, trainer.hyper_steps
    assert [r.step for r in records if r.ft_loss is not None] == list(range(1, spe + 1))  # every step in the warm-up only
    assert n_hyper == sum(s % 3 == 0 for s in range(spe + 1, 3 * spe + 1)) and all(math.isfinite(r.hypergrad_norm) for r in records if r.hyper)
    # each hyper-step: hyper_every - 1 catch-up steps + K = 1 unrolled step, all on its one MetaFT batch
    assert trainer.head_state.step == spe + n_hyper * 3
    assert trainer.ft_train_stream.position == spe + n_hyper
    paper = make_trainer(online_head="every_step").run()
    assert not torch.equal(paper.problem.meta.logits, trainer.problem.meta.logits)


def test_baseline_runs_the_same_code_and_matches_a_plain_pt_loop():
    trainer = make_trainer(warmup_epochs=3).run()
    assert torch.equal(trainer.problem.meta.logits, torch.zeros(7))
    plain = MLPMultitask(seed=0)
    opt = torch.optim.Adam(plain.theta(), lr=BASE["pt_lr"])
    stream = BatchStream(multitask_data(n=96)[:64], 8, seed=1, collate=stack)
    plain.encoder.train()
    for s in range(trainer.total_steps):
        opt.zero_grad()
        plain.pt_loss(stream.batch(s)).backward()
        opt.step()
    assert_bit_identical(final_state(trainer)[:-1], [t.detach() for t in plain.theta()])


class Killed(Exception):
    pass


def kill_at(step):
    def hook(record):
        if record.step == step:
            raise Killed

    return hook


FAST = dict(reuse_pt_graph=True, online_head="at_hyper_steps")


@pytest.mark.parametrize("kill_step,options", [(1, {}), (8, {}), (9, {}), (17, {}), (24, {}), (9, FAST), (17, FAST)])
def test_resume_after_interruption_is_bit_identical(tmp_path, kill_step, options):
    reference = make_trainer(tmp_path / "ref", **options).run()
    with pytest.raises(Killed):
        make_trainer(tmp_path / "run", hooks=[kill_at(kill_step)], **options).run()
    ck = tmp_path / "run" / "last.pt"
    assert (load_checkpoint(ck)["step"] == kill_step - 1) if kill_step > 1 else not ck.exists()
    resumed = make_trainer(tmp_path / "run", **options).run()
    assert_bit_identical(final_state(resumed), final_state(reference))
    assert resumed.trajectory_steps == reference.trajectory_steps
    assert_bit_identical(resumed.trajectory, reference.trajectory)


@pytest.mark.parametrize("journal", [False, True], ids=["rows-in-checkpoint", "journal-file"])
@pytest.mark.parametrize("kill_step,options", [(1, {}), (6, {}), (9, {}), (24, {}), (17, FAST)])
def test_a_resumed_run_logs_what_the_uninterrupted_run_logged(tmp_path, kill_step, options, journal):
    """The per-step metric rows are journaled with each checkpoint: after a kill at any step the resumed
    run's log holds every step once, with the same values, not only the steps after the checkpoint."""
    from metapt.tracking import StageRun

    hook = lambda log: log.step_hook(journal=tmp_path / "run" / "steps.jsonl" if journal else None)  # noqa: E731
    ref_log, run_log = (StageRun("pretrain", "toy", "tiny", {}, {}) for _ in range(2))
    make_trainer(tmp_path / "ref", hooks=[ref_log.step_hook()], checkpoint_every=4, **options).run()
    with pytest.raises(Killed):
        make_trainer(tmp_path / "run", hooks=[hook(run_log), kill_at(kill_step)], checkpoint_every=4, **options).run()
    resumed_log = StageRun("pretrain", "toy", "tiny", {}, {})  # a new process: nothing in memory
    make_trainer(tmp_path / "run", hooks=[hook(resumed_log)], checkpoint_every=4, **options).run()
    assert resumed_log.metrics == ref_log.metrics
    assert [s for s, _ in resumed_log.metrics["pt/pt_loss"]] == list(range(1, 25))
    if journal:  # the checkpoint holds the journal's committed length, not the rows
        assert set(load_checkpoint(tmp_path / "run" / "last.pt")["journal"][0]) == {"journal_bytes"}
    with pytest.raises(ValueError, match="journals 1 hook"):  # another run's checkpoint (a different hook set) is refused
        make_trainer(tmp_path / "run", checkpoint_every=4, **options).run()


WORKER = """
import sys, time, torch
from tests.unit.test_metaloop import make_trainer, final_state
slow = float(sys.argv[2])
trainer = make_trainer(sys.argv[1], hooks=[lambda r: time.sleep(slow)]).run()
torch.save(final_state(trainer), sys.argv[1] + "/final.pt")
"""


def test_resume_after_sigkill_is_bit_identical(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    run = lambda d, slow: subprocess.Popen([sys.executable, "-c", WORKER, str(d), str(slow)], env=env)  # noqa: E731
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    assert run(ref, 0).wait(timeout=120) == 0
    proc = run(killed, 0.05)
    deadline = time.time() + 120
    while time.time() < deadline and not ((killed / "last.pt").exists() and load_checkpoint(killed / "last.pt")["step"] >= 10):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    step_at_kill = load_checkpoint(killed / "last.pt")["step"]
    assert 10 <= step_at_kill < 24, "the worker must be killed mid-run"
    assert run(killed, 0).wait(timeout=120) == 0
    a = torch.load(ref / "final.pt", weights_only=True)
    b = torch.load(killed / "final.pt", weights_only=True)
    assert_bit_identical(a, b)


def test_nan_in_pt_loss_stops_with_step_and_keeps_last_good_checkpoint(tmp_path):
    data = multitask_data(n=96)
    pt = BatchStream(data[:64], 8, seed=1, collate=stack)
    bad_step = 6  # 1-based, in the first epoch (the example recurs in every epoch)
    bad = int(pt.indices(bad_step - 1)[0])
    x, y, z = data[bad]
    data[bad] = (torch.full_like(x, float("nan")), y, z)
    with pytest.raises(NonFiniteError, match=f"PT loss at PT step {bad_step}"):
        make_trainer(tmp_path, data=data).run()
    ck = load_checkpoint(tmp_path / "last.pt")
    assert ck["step"] == bad_step - 1
    assert all(torch.isfinite(v).all() for v in ck["modules"]["encoder"].values() if v.is_floating_point())
    resumed = make_trainer(tmp_path, data=multitask_data(n=96))  # clean data: the run can go on from there
    assert resumed.resume() and resumed.step == bad_step - 1


def test_nan_in_hypergradient_stops_with_step(tmp_path):
    data = multitask_data(n=96)
    x, y, z = data[80]
    data[80] = (x, y, torch.full_like(z, float("nan")))  # a MetaFT-val label
    trainer = make_trainer(tmp_path, data=data)
    first_hyper = next(s for s in range(1, trainer.total_steps + 1) if trainer.is_hyper_step(s))
    val_positions = {int(i) for i in trainer.ft_val_stream.indices(0)}
    assert 0 in val_positions  # the poisoned example is in the first MetaFT-val batch
    with pytest.raises(NonFiniteError, match=f"hypergradient at PT step {first_hyper}"):
        trainer.run()
    assert load_checkpoint(tmp_path / "last.pt")["step"] == first_hyper - 1


def test_checkpoint_is_weights_only_loadable_and_trajectory_saved(tmp_path):
    trainer = make_trainer(tmp_path).run()
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["step"] == trainer.total_steps
    trainer.save_trajectory(tmp_path / "phi.npz")
    traj = PhiTrajectory.read(tmp_path / "phi.npz")
    assert traj.values.shape == (len(traj.steps), 7)
    assert traj.steps[0] == 0 and traj.steps[-1] == trainer.total_steps
    assert traj.quantity == trainer.problem.meta.trajectory_quantity
    np.testing.assert_array_equal(traj.values[-1], trainer.problem.meta.trajectory_vector().numpy())
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary files left behind


def test_reuse_pt_graph_and_power_alpha_run():
    cfg = HypergradConfig(normalise="rms", alpha_mode="power", neumann_terms=3, damping=0.1, pt_batches=2)
    records = []
    trainer = make_trainer(reuse_pt_graph=True, hooks=[records.append], hypergrad=cfg).run()
    hyper = [r for r in records if r.hyper]
    assert hyper and all(r.alpha > 0 and r.alpha * 0 == 0 for r in hyper)
    assert trainer.lambda_max is not None and trainer.lambda_max > 0
    assert hyper[0].alpha == pytest.approx(0.5 / trainer.lambda_max, rel=0.5)


def test_downstream_agnostic_meta_objective_runs_on_held_out_pt_tasks():
    split = TaskSplit.random(7, 0.3, seed=0)
    problem = AgnosticMLP(split, seed=0)
    records = []
    trainer = make_trainer(problem=problem, hooks=[records.append]).run()
    assert len(split.held_out) == 2 and len(set(split.kept.tolist()) | set(split.held_out.tolist())) == 7
    assert trainer.problem.meta.logits.shape == (5,)
    assert any(r.hyper for r in records)
    assert trainer.problem.meta.logits.abs().sum() > 0


def test_config_errors_name_the_key_and_allowed_values():
    with pytest.raises(ValidationError) as err:
        MetaLoopConfig(hypergrad={"normalise": "l2"})
    assert "normalise" in str(err.value) and "'paper'" in str(err.value) and "'rms'" in str(err.value)
    with pytest.raises(ValidationError, match="hyper_evry"):
        MetaLoopConfig(hyper_evry=10)


def test_a_checkpoint_that_does_not_fit_names_its_path_and_keeps_the_last_good_one(tmp_path, monkeypatch):
    """A full disk while writing a checkpoint (ENOSPC from the writer; the real-disk case is in
    tests/integration/test_faults.py): the error names the file and the previous checkpoint stays whole."""
    import errno

    from metapt.io import DiskFullError

    trainer = make_trainer(tmp_path, checkpoint_every=4)
    real_save = torch.save

    def save(obj, f, *args, **kwargs):
        if obj["step"] >= 8:
            with open(f, "wb") as fh:
                fh.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    with pytest.raises(DiskFullError, match=rf"no space left on the device writing {tmp_path / 'last.pt'}.*the previous last.pt is unchanged"):
        trainer.run()
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 4 and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_neumann_skip_in_the_loop_estimates_lambda_max_once_per_refresh_and_logs_the_bound():
    from metapt.engine.hypergrad import neumann_skip_bound

    for tol, skipped in ((0.9, 1.0), (1e-12, 0.0)):
        records = []
        hg = HypergradConfig(normalise="rms", neumann_skip_tol=tol, power_refresh=4, power_iterations=5)
        trainer = make_trainer(hooks=[records.append], hypergrad=hg).run()
        hyper = [r for r in records if r.hyper]
        assert hyper and all(r.hvps_skipped == skipped for r in hyper)
        assert all(r.neumann_bound == pytest.approx(neumann_skip_bound(r.alpha, trainer.lambda_max, 1)) for r in hyper[-(len(hyper) % 4 or 4):])
        assert "neumann_bound" in hyper[0].scalars() and "neumann_bound" not in [k for r in records if not r.hyper for k in r.scalars()]
