"""Report figures: what they plot, checked on their artists, on records written by the real writers (one by a real meta-PT)."""

from __future__ import annotations

import importlib
import importlib.util

import numpy as np
import pytest

from metapt.domain import domain
from metapt.io import write_json
from metapt.plotting import plt, save_figure
from metapt.records import Evaluation, PhiTrajectory, PTSummary
from metapt.report import build_report
from metapt.report.figures import plot_warp_std, plot_weight_trajectories, task_weights
from tests.unit.test_report_cells import eval_rows, evaluation

COLOURS = domain("ppi").truth_kinds


def _task_lines(fig) -> dict[int, object]:
    """The plotted task lines by task index (each is labelled ``task <index>``)."""
    return {int(line.get_label().split()[1]): line for line in fig.axes[0].lines if line.get_label().startswith("task ")}


def test_a_weights_trajectory_is_plotted_as_it_is_and_logits_are_squashed():
    steps = np.array([0, 5, 10])
    w = np.array([[1.0, 1.0, 1.0], [0.6, 1.5, 1.0], [0.2, 1.8, 1.0]])
    run = PTSummary("results/ppi/pretrain/meta-full-s0", "meta", "full", 0, None, 10, 5)
    fig = plot_weight_trajectories(PhiTrajectory(steps, w, "weights"), run, kinds=["helpful", "noise", "distractor"], colours=COLOURS, domain="ppi")
    lines = _task_lines(fig)
    assert sorted(lines) == [0, 1, 2]
    for t, line in lines.items():
        np.testing.assert_array_equal(line.get_xdata(), steps)
        np.testing.assert_array_equal(line.get_ydata(), w[:, t])  # a weight of 0.2 stays 0.2 (not 2·sigmoid(0.2) = 1.1)
    assert lines[0].get_color() == COLOURS["helpful"] and "task weight w" in fig.axes[0].get_ylabel()
    plt.close(fig)
    logits = PhiTrajectory(steps, np.log(w / (2 - w)), "logits")  # λ with 2·sigmoid(λ) = w
    np.testing.assert_allclose(task_weights(logits), w)
    with pytest.raises(ValueError, match="no task weights"):
        task_weights(PhiTrajectory(steps, w[:, :2], "warp", ("warp_std", "m_mean")))


def test_the_warp_figure_plots_the_warp_std_column():
    traj = PhiTrajectory(np.array([0, 25, 50]), np.array([[1600.0, 1.0], [1500.0, 0.9], [1450.0, 0.8]]), "warp", ("warp_std", "m_mean"))
    run = PTSummary("results/ecg/pretrain/meta_simclr-N25-s0", "meta_simclr", "N=25", 0, 25, 50, 5, trajectory="phi.npz")
    fig = plot_warp_std([(run, traj)], "ecg")
    (line,) = fig.axes[0].lines
    np.testing.assert_array_equal(line.get_ydata(), [1600.0, 1500.0, 1450.0])
    assert line.get_label() == "N=25 seed 0"
    plt.close(fig)


def _pretrain():
    """``metapt.ppi.pretrain.pretrain`` (``metapt.ppi.experiment.pretrain`` before it moved)."""
    name = "metapt.ppi.pretrain" if importlib.util.find_spec("metapt.ppi.pretrain") else "metapt.ppi.experiment"
    return importlib.import_module(name).pretrain


TINY_PT = {"model": {"layers": 1, "hidden": 8},
           "pretrain": {"batch_size": 16, "meta_batch_size": 16,
                        "loop": {"epochs": 2, "warmup_epochs": 1, "hyper_every": 2, "pt_lr": 1e-3, "checkpoint_every": 0, "snapshot_every": 1,
                                 "hypergrad": {"normalise": "rms"}}}}


def test_figures_of_a_real_meta_pt_plot_its_trajectory_as_written(tmp_path):
    """A tiny real meta-PT writes its φ trajectory with its own writer; the report plots exactly those weights."""
    pytest.importorskip("torch_geometric")
    from metapt.evaluate import weights_vs_truth
    from metapt.ppi import synth
    from metapt.ppi.settings import PPIConfig
    from metapt.ppi.splits import make_splits, species_ids

    graphs, truth = synth.generate(synth.preset("discriminating", n_graphs=100, n_pt_tasks=20), seed=0)
    splits = make_splits(species_ids(graphs))
    pt = _pretrain()("meta", graphs, splits, PPIConfig.model_validate(TINY_PT), seed=0, truth=truth)
    assert pt.trainer.hyper_steps > 0

    run = "results/ppi/pretrain/meta-full-s0"
    pt.trainer.save_trajectory(tmp_path / run / "phi.npz")  # the PhiTrajectory writer, as the PT stage calls it
    np.save(tmp_path / run / "weights.npy", pt.weights)
    truth_file = "data/ppi/processed/ground_truth.json"
    write_json(tmp_path / truth_file, truth)
    ok = np.isfinite(pt.weights)
    summary = PTSummary(run, "meta", "full", 0, None, pt_steps=pt.trainer.total_steps, hyper_steps=pt.trainer.hyper_steps,
                        weights=f"{run}/weights.npy", trajectory=f"{run}/phi.npz",
                        weights_vs_truth=weights_vs_truth(pt.weights[ok], np.asarray(truth["helpful_mask"])[ok], truth["pt_kind"]))
    rows = eval_rows("ppi", {("full", "uniform"): [0.70, 0.72], ("full", "meta"): [0.74, 0.73]}, "test_hard_auroc", "full")
    evaluation("ppi", rows, [summary], truth_file).write(tmp_path / "results/ppi/evaluation.json")

    traj = PhiTrajectory.read(tmp_path / run / "phi.npz")
    assert traj.quantity == "weights" and traj.values.shape == (len(traj.steps), 20)
    np.testing.assert_array_equal(traj.values, pt.trainer.phi_trajectory().values)
    fig = plot_weight_trajectories(traj, summary, pt.weights, truth["pt_kind"], COLOURS, "ppi")
    lines = _task_lines(fig)
    kinds = truth["pt_kind"]
    assert {kinds[t] for t in lines} == set(kinds)  # a sample of up to 10 tasks of every planted kind
    assert all(sum(kinds[t] == k for t in lines) == min(10, kinds.count(k)) for k in set(kinds))
    for t, line in lines.items():
        np.testing.assert_array_equal(line.get_xdata(), traj.steps)
        np.testing.assert_array_equal(line.get_ydata(), traj.values[:, t])
        assert line.get_ydata()[-1] == pytest.approx(pt.weights[t])  # the last point is the run's final weight w, not 2·sigmoid(w)
        assert line.get_color() == COLOURS[truth["pt_kind"][t]]
    assert traj.steps[0] == 0 and all(line.get_ydata()[0] == 1.0 for line in lines.values())  # λ = 0 at the start: w = 1 (not 2·sigmoid(1) = 1.46)
    assert min(traj.values[-1]) < 0.5 and max(traj.values[-1]) > 1.5  # outside (1, 1.76), where a second 2·sigmoid would squeeze them
    assert "task weight w" in fig.axes[0].get_ylabel()
    save_figure(fig, tmp_path / "weight_trajectories.png")

    report = build_report({"ppi": tmp_path / "results/ppi/evaluation.json"}, tmp_path / "report", root=tmp_path)
    names = [f["file"] for f in report["figures"]]
    assert names == ["figures/ppi_weight_trajectories.png", "figures/ppi_weights_by_kind.png", "figures/ppi_top_tasks.png", "figures/pt_cost.png"]
    assert not report["warnings"]
    for f in names:
        assert (tmp_path / "report" / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cost = report["pt_cost"]["ppi"]["meta"][0]
    assert cost["hyper_steps_per_pt_step"] == pytest.approx(pt.trainer.hyper_steps / pt.trainer.total_steps)
    assert Evaluation.read(tmp_path / "results/ppi/evaluation.json").pretrain == [summary]
