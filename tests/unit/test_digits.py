"""The digits domain: the policy's transforms against exact references (float64), the tasks' planted
labels, meta-SimCLR moving φ through the engine, a killed multi-task PT job resuming identically, and
the planted-truth report section on records made by the real writers."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from metapt.config import ParamsError, Profile, load_params
from metapt.digits.augment import AugmentationPolicy, rotate_180
from metapt.digits.data import ORIENTATION_DIGITS, task_images
from metapt.digits.domain import PLANTED, TASKS, TRANSFORMS

ROOT = Path(__file__).resolve().parents[2]
ZERO = dict.fromkeys(TRANSFORMS, 0.0)


def digits(n=60, seed=0):
    from sklearn.datasets import load_digits

    b = load_digits()
    idx = np.random.default_rng(seed).permutation(len(b.target))[:n]
    return b.images[idx].astype(np.uint8), b.target[idx]


def canvas(b=4, size=16, dtype=torch.float64):
    x, _, _ = task_images("class", *digits(b), size, 8, 4, 0)
    return torch.from_numpy(x).to(dtype)


def warp(policy: AugmentationPolicy, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The policy's affine resampling for given uniforms (no noise)."""
    grid = F.affine_grid(policy.affine(u, x.shape[-2:]), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def test_zero_magnitudes_are_the_identity():
    torch.manual_seed(0)
    x = canvas()
    torch.testing.assert_close(AugmentationPolicy(ZERO).double()(x), x, atol=1e-12, rtol=0)


def test_rotation_by_180_degrees_is_the_exact_turn_and_integer_shifts_are_rolls():
    x = canvas()
    pol = AugmentationPolicy({**ZERO, "rotation": 180.0, "translation": 3.0}).double()
    turn = torch.tensor([[1.0, 0, 0, 0, 0]], dtype=torch.float64).expand(4, 5)
    torch.testing.assert_close(warp(pol, x, turn), rotate_180(x), atol=1e-10, rtol=0)
    # u₂ = 1 at m_translation = 3: output pixel j samples input j + 3 (the grid maps output → input)
    shift = torch.tensor([[0, 1.0, 0, 0, 0]], dtype=torch.float64).expand(4, 5)
    expect = torch.zeros_like(x)
    expect[..., :-3] = x[..., 3:]
    torch.testing.assert_close(warp(pol, x, shift), expect, atol=1e-10, rtol=0)


def test_the_policy_gradient_matches_finite_differences_in_float64():
    x = canvas(2)
    pol = AugmentationPolicy({"rotation": 30.0, "translation": 2.0, "scale": 0.2, "shear": 0.2, "noise": 0.1}).double()
    weights = torch.randn_like(x)

    def loss(rho):
        pol.log_ratio.data.copy_(rho)  # the functional view: same RNG draw each call
        torch.manual_seed(3)
        return (pol(x) * weights).sum()

    rho = torch.tensor([0.1, -0.2, 0.05, 0.3, -0.1], dtype=torch.float64)
    torch.manual_seed(3)
    pol.log_ratio.data.copy_(rho)
    (grad,) = torch.autograd.grad((pol(x) * weights).sum(), pol.log_ratio)
    eps = 1e-6
    fd = torch.stack([(loss(rho + eps * e) - loss(rho - eps * e)) / (2 * eps) for e in torch.eye(5, dtype=torch.float64)])
    torch.testing.assert_close(grad, fd, rtol=1e-5, atol=1e-7)
    assert (grad.abs() > 0).all()  # every transform reaches φ


def test_the_tasks_carry_their_planted_labels():
    images, classes = digits(200)
    x, y, src = task_images("orientation", images, classes, 16, 8, 4, 0)
    assert set(classes[src]) <= set(ORIENTATION_DIGITS) and 0.3 < y.mean() < 0.7
    upright, _, _ = task_images("class", images[src], classes[src], 16, 8, 4, 0)
    turned = y[:, 0] == 1
    np.testing.assert_array_equal(x[turned], upright[turned][..., ::-1, ::-1])
    np.testing.assert_array_equal(x[~turned], upright[~turned])
    x, y, _ = task_images("position", images, classes, 16, 8, 4, 0)
    cols = np.arange(16)
    centre = (x[:, 0].sum(1) * cols).sum(1) / x[:, 0].sum((1, 2))
    assert ((centre > 8) == (y[:, 0] == 1)).all()
    _, y, _ = task_images("class", images, classes, 16, 8, 4, 0)
    np.testing.assert_array_equal(y.argmax(1), classes)


def profile(tasks=("class", "orientation"), **pretrain):
    tree = load_params(ROOT / "params.yaml").profiles["tiny"].model_dump()
    tree["digits"]["grid"]["tasks"] = list(tasks)
    tree["digits"]["pretrain"]["loop"].update(pretrain)
    return Profile.model_validate(tree)


@pytest.fixture
def processed(tmp_path, monkeypatch):
    """The tiny profile's processed digits, written by the real acquire and preprocess stages."""
    from metapt.digits.acquire import acquire
    from metapt.digits.preprocess import preprocess

    monkeypatch.chdir(tmp_path)
    acquire(profile())
    preprocess(profile())
    return tmp_path


class Killed(Exception):
    pass


def test_meta_simclr_moves_the_policy_and_a_killed_job_resumes_identically(processed):
    """A PT job pre-trains one encoder per task: killed inside the second task, it resumes with the same
    weights, the same trajectory and the same per-step log as the uninterrupted job."""
    from metapt.digits.pretrain import pretrain_run
    from metapt.domain import Run
    from metapt.tracking import StageRun

    prof = profile(epochs=3, checkpoint_every=2)
    run = Run("digits", "meta_simclr", 0, labels=20)

    def job(scratch, log, extra=()):
        return pretrain_run(prof, run, checkpoint_dir=processed / scratch, hooks=[log.step_hook(journal=processed / scratch / "steps.jsonl"), *extra],
                            device=torch.device("cpu"), progress=False)

    ref_log = StageRun("pretrain", "ref", "tiny", {}, {})
    ref = job("ref", ref_log)
    calls = []

    def kill(record):
        calls.append(record.step)
        if len(calls) == 9 + 4:  # 9 steps of the class task, then step 4 of orientation's 9
            raise Killed

    with pytest.raises(Killed):
        job("run", StageRun("pretrain", "run", "tiny", {}, {}), [kill])
    resumed_log = StageRun("pretrain", "run", "tiny", {}, {})
    resumed = job("run", resumed_log)
    for k, v in ref.encoder.state_dict().items():
        torch.testing.assert_close(resumed.encoder.state_dict()[k], v, rtol=0, atol=0)
    np.testing.assert_array_equal(resumed.trajectory.values, ref.trajectory.values)
    assert resumed.log == ref.log and resumed_log.metrics == ref_log.metrics
    assert [s for s, _ in ref_log.metrics["pt/orientation/pt_loss"]] == list(range(1, 10))
    assert ref.log["hyper_steps"] > 0
    moved = ref.trajectory.values[-1] / ref.trajectory.values[0]
    assert np.isfinite(moved).all() and (moved != 1).all()  # every magnitude of every task moved
    assert ref.trajectory.columns == tuple(f"{t}/{tr}" for t in ("class", "orientation") for tr in TRANSFORMS)


def test_fixed_policies_never_move(processed):
    from metapt.digits.pretrain import pretrain_run
    from metapt.domain import Run

    out = pretrain_run(profile(), Run("digits", "oracle", 0), checkpoint_dir=processed / "o", hooks=[], device=torch.device("cpu"), progress=False)
    assert out.trajectory is None and out.log["hyper_steps"] == 0
    assert out.log["tasks"]["orientation"]["magnitudes"]["rotation"] == 0.0  # the oracle's hand-chosen policy
    assert out.log["tasks"]["class"]["magnitudes"]["translation"] == pytest.approx(8.0)


def test_params_errors_name_the_key(tmp_path):
    text = (ROOT / "params.yaml").read_text()
    (tmp_path / "params.yaml").write_text(text.replace("meta_labels: [200]", "meta_labels: [300]", 1))
    with pytest.raises(ParamsError, match=r"profiles\.embedded\.digits\.grid.*meta_labels: \[300\] not in grid\.labels"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text(text.replace("labels: [20, 50, 200]", "labels: [20, 50, 200, 900]", 1))
    with pytest.raises(ParamsError, match=r"digits.*exceed the .* orientation task's PT pool"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text(text.replace("tasks: [class, orientation, position]", "tasks: [class, rotation]", 1))
    with pytest.raises(ParamsError, match=r"digits\.grid\.tasks\.1: Input should be 'class', 'orientation' or 'position'"):
        load_params(tmp_path / "params.yaml")


def test_planted_section_scores_directions_from_the_records(tmp_path):
    """Trajectories written by the real writer, where rotation falls on orientation for seeds 0–3 and rises for seed 4."""
    from metapt.digits.domain import DOMAIN
    from metapt.digits.report import planted_section
    from metapt.records import Evaluation, PhiTrajectory, PTSummary
    from metapt.report.cells import Layout

    summaries = []
    for seed in range(5):
        cols = tuple(f"{t}/{tr}" for t in TASKS for tr in TRANSFORMS)
        start = np.ones(len(cols))
        final = start.copy()
        final[cols.index("orientation/rotation")] = 0.5 if seed < 4 else 1.5
        final[cols.index("class/translation")] = 1.2
        path = tmp_path / f"phi{seed}.npz"
        PhiTrajectory(np.array([0, 5, 10]), np.stack([start, (start + final) / 2, final]), "magnitudes", cols).write(path)
        summaries.append(PTSummary(f"results/digits/pretrain/meta_simclr-N50-s{seed}", "meta_simclr", "N=50", seed, 50, 10, 2, None, str(path)))
    ev = Evaluation("digits", "tiny", "sklearn", None, [], summaries)
    section = planted_section(ev, Layout(DOMAIN), tmp_path, tmp_path / "figures")
    cell = {c["id"]: c for c in section.cells}["digits/orientation_N=50/meta_simclr/rotation_log_change/pt"]
    assert cell["planted"] == "down" and cell["n_right"] == 4 and cell["n"] == 5
    assert cell["mean"] == pytest.approx((4 * math.log(0.5) + math.log(1.5)) / 5)
    assert cell["runs"][0]["pt_run"] == "results/digits/pretrain/meta_simclr-N50-s0"
    # unchanged magnitudes count as "not down"; the position ones (planted down) are wrong on every seed
    assert {c["id"].split("/")[1] + "/" + c["metric"]: c["n_right"] for c in section.cells if "planted" in c} == {
        "orientation_N=50/rotation_log_change": 4, "position_N=50/translation_log_change": 0, "position_N=50/rotation_log_change": 0,
        "class_N=50/translation_log_change": 5, "orientation_N=50/translation_log_change": 5}
    assert "| 50 | 4 |" in section.markdown and "2/5 |" in section.markdown
    assert len(PLANTED) == 5 and section.figures and section.figures[0][0].exists()
