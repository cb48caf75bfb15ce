"""Synthetic 12-lead ECGs with PTB-XL superclass labels, written in PTB-XL's exact on-disk layout.

Why: the embedded default must run without the 1.7 GB PTB-XL download, through the same reader,
checksum verifier and splitter as the real data.

The generator is a batched ECGSYN (McSharry et al. 2003), the model behind
``nk.ecg_simulate(method='multileads')``. Two facts make it fast:

* the (x, y) limit cycle starts on the unit circle, so its phase is just the integral of the
  piecewise-constant angular rate 2π/RR: it is computed exactly, with no ODE;
* the z equation, dz/dt = -Σ_i a_i f_i(θ) - (z - z_base(t)), is linear in the wave amplitudes a_i.
  z is the sum of 5 unit-amplitude basis traces (P, Q, R, S, T) plus the baseline trace, and every
  lead is the combination with its row of neurokit2's 12×5 lead matrix. Classic RK4 applied to a
  linear ODE with known forcing is a first-order linear recurrence, run with ``scipy.signal.lfilter``.

Lead-specific amplitudes are therefore free, which gives MI its territories (inferior, anterior,
lateral). As in neurokit2, each lead is rescaled to [-0.4, 1.2] mV, and voltage effects (HYP's
precordial gain, global gain, baseline wander, noise) come after that rescaling.
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy.signal import lfilter

from metapt.io import atomic_path, remove_dead_writers_temps, sha256_file, temp_dir_beside

CLASSES: tuple[str, ...] = ("NORM", "MI", "STTC", "CD", "HYP")
LEADS: tuple[str, ...] = ("I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")
WAVES: tuple[str, ...] = ("P", "Q", "R", "S", "T")
P, Q, R, S, T = range(5)
# neurokit2 0.2.13's lead matrix for method='multileads': rows are leads, columns the P Q R S T amplitude factors
GAMMA = np.array([
    [1, 0.1, 1, 1.2, 1], [2, 0.2, 0.2, 0.2, 3], [1, -0.1, -0.8, -1.1, 2.5], [-1, -0.05, -0.8, -0.5, -1.2],
    [0.05, 0.05, 1, 1, 1], [1, -0.05, -0.1, -0.1, 3], [-0.5, 0.05, 0.2, 0.5, 1], [0.05, 0.05, 1.3, 2.5, 2],
    [1, 0.05, 1, 2, 1], [1.2, 0.05, 1, 2, 2], [1.5, 0.1, 0.8, 1, 2], [1.8, 0.05, 0.5, 0.1, 2],
])
TI0 = np.array([-70.0, -15.0, 0.0, 15.0, 100.0])  # degrees
AI0 = np.array([1.2, -5.0, 30.0, -7.5, 0.75])
BI0 = np.array([0.25, 0.1, 0.1, 0.1, 0.4])
# PTB-XL 1.0.1 superclass counts (NORM 9528) of MI, STTC, CD, HYP: relative weights of the abnormal classes
_ABNORMAL_PRIOR = (5486.0, 5250.0, 4907.0, 2655.0)
TERRITORIES: dict[str, tuple[int, ...]] = {
    "inferior": (1, 2, 5),          # II, III, aVF
    "anterior": (6, 7, 8, 9),       # V1–V4
    "lateral": (0, 4, 10, 11),      # I, aVL, V5, V6
}
PRECORDIAL = slice(6, 12)
# One PTB-XL diagnostic code written per superclass, plus a few more so scp_statements.csv looks real.
CLASS_CODE = {"NORM": "NORM", "MI": "IMI", "STTC": "NDT", "CD": "CLBBB", "HYP": "LVH"}
SCP_STATEMENTS: tuple[tuple[str, str, float | None, str, str], ...] = (
    # code, description, diagnostic, diagnostic_class, diagnostic_subclass
    ("NDT", "non-diagnostic T abnormalities", 1.0, "STTC", "STTC"),
    ("NST_", "non-specific ST changes", 1.0, "STTC", "NST_"),
    ("IMI", "inferior myocardial infarction", 1.0, "MI", "IMI"),
    ("ASMI", "anteroseptal myocardial infarction", 1.0, "MI", "AMI"),
    ("LVH", "left ventricular hypertrophy", 1.0, "HYP", "LVH"),
    ("RVH", "right ventricular hypertrophy", 1.0, "HYP", "RVH"),
    ("CLBBB", "complete left bundle branch block", 1.0, "CD", "CLBBB"),
    ("CRBBB", "complete right bundle branch block", 1.0, "CD", "CRBBB"),
    ("NORM", "normal ECG", 1.0, "NORM", "NORM"),
    ("SR", "sinus rhythm", None, "", ""),
)
FS = 100
DURATION_S = 10.0
Range = tuple[float, float]


class SynthECGConfig(BaseModel):
    """Every knob of the synthetic ECG generator.

    Defaults are tuned so that a linear probe on crude features is far from perfect (target band
    macro AUROC ≈ 0.75–0.85, docs/background.md, "Synthetic ECG targets"); the prototype's easier values are in the descriptions.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_records: int = Field(1000, ge=1)
    seed: int = Field(0, ge=0)
    # signal and integration
    fs: int = Field(FS, ge=1, description="output sampling rate (Hz); PTB-XL's low-rate records are 100 Hz")
    duration_s: float = Field(DURATION_S, gt=0)
    sfint: int = Field(500, ge=1, description="internal RK4 rate (Hz); a multiple of fs")
    burn_in_s: float = Field(1.0, ge=0, description="simulated then dropped: random beat phase at t=0, no z transient")
    batch_size: int = Field(64, ge=1, description="records integrated together (bounds memory)")
    # labels
    p_norm: float = Field(0.44, ge=0, le=1, description="P(record is NORM only)")
    p_two: float = Field(0.3, ge=0, le=1, description="P(an abnormal record has 2 superclasses, else 1)")
    abnormal_prior: tuple[float, float, float, float] = Field(
        _ABNORMAL_PRIOR, description="relative weights of MI, STTC, CD, HYP among abnormal records (PTB-XL counts)")
    label_flip: float = Field(0.03, ge=0, le=1, description="P(the written label is redrawn from the prior)")
    severity: Range = Field((0.2, 1.0), description="per-class severity s ~ U(lo, hi); 0 = no change")
    # per-class wave changes (factor reached at s = 1)
    mi_q_amp: float = Field(4.0, description="MI: Q amplitude ×")
    mi_q_width: float = Field(1.8, description="MI: Q width ×")
    mi_t_amp: float = Field(-1.0, description="MI: T amplitude × (−1 = inverted)")
    mi_territories: bool = Field(True, description="MI changes amplitudes only in one territory's leads")
    sttc_t_amp: float = Field(-0.3, description="STTC: T amplitude × (prototype −0.6)")
    sttc_t_shift_deg: float = Field(15.0, description="STTC: T pulled into ST by this many degrees (prototype 25)")
    sttc_t_width: float = Field(1.4)
    cd_qrs_width: float = Field(1.25, description="CD: Q, R, S width × (prototype 2.4)")
    cd_pr_shift_deg: float = Field(20.0, description="CD: P earlier (long PR) by this many degrees (prototype 35)")
    hyp_r_amp: float = Field(1.4, description="HYP: R amplitude × (prototype 1.8)")
    hyp_s_amp: float = Field(1.6, description="HYP: S amplitude × (prototype 2.5)")
    hyp_t_amp: float = Field(0.2, description="HYP: strain T amplitude × (prototype −0.3)")
    hyp_precordial_gain: float = Field(1.25, description="HYP: V1–V6 voltage × after rescaling (prototype 2)")
    # heart rate (bpm)
    hr_norm: Range = Field((55.0, 95.0))
    hr_abnormal: Range = Field((50.0, 100.0), description="overlaps NORM's range on purpose")
    hr_cd: Range = Field((45.0, 85.0), description="CD is slower on average (prototype 45–80)")
    hr_std: Range = Field((0.5, 4.0), description="heart-rate variability: ECGSYN's RR std (bpm) ~ U(lo, hi)")
    lfhf_ratio: float = Field(0.5, gt=0)
    # per-record jitter of the wave parameters
    ti_jitter_deg: float = Field(6.0, ge=0, description="wave position sd (degrees); prototype 3")
    ai_jitter: float = Field(0.2, ge=0, description="wave amplitude relative sd; prototype 0.08")
    bi_jitter: float = Field(0.12, ge=0, description="wave width relative sd; prototype 0.05")
    # nuisances applied after the per-lead rescaling to [-0.4, 1.2] mV
    gain: Range = Field((0.7, 1.3), description="global voltage gain ~ U(lo, hi)")
    lead_gain_sd: float = Field(0.3, ge=0, description="per-lead log-normal gain sd (electrodes, habitus); prototype 0")
    noise_mv: Range = Field((0.005, 0.05), description="white Gaussian noise sd (mV) ~ U(lo, hi)")
    wander_mv: Range = Field((0.0, 0.3), description="baseline-wander amplitude (mV) ~ U(lo, hi)")
    wander_hz: Range = Field((0.1, 0.4))

    @model_validator(mode="after")
    def _consistent(self) -> "SynthECGConfig":
        if self.sfint % self.fs:
            raise ValueError(f"sfint ({self.sfint}) must be a multiple of fs ({self.fs})")
        for name in ("severity", "hr_norm", "hr_abnormal", "hr_cd", "hr_std", "gain", "noise_mv", "wander_mv",
                     "wander_hz"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"{name} must satisfy 0 ≤ lo ≤ hi, got {(lo, hi)}")
        if min(self.hr_norm[0], self.hr_abnormal[0], self.hr_cd[0]) <= 0:
            raise ValueError("heart-rate ranges must be positive")
        if self.severity[1] > 1:
            raise ValueError("severity must lie in [0, 1]")
        if min(self.abnormal_prior) < 0 or sum(self.abnormal_prior) <= 0:
            raise ValueError("abnormal_prior needs non-negative weights with a positive sum")
        if self.p_two > 0 and np.count_nonzero(self.abnormal_prior) < 2:
            raise ValueError("p_two > 0 needs at least two abnormal classes with positive weight")
        return self

    @property
    def n_samples(self) -> int:
        return int(round(self.duration_s * self.fs))


PRESETS: dict[str, dict[str, Any]] = {
    # The embedded default: crude-feature linear probe macro AUROC ≈ 0.82 on 1000 records.
    "default": {},
    # The classcond.py prototype's values (no territories, no per-lead gain): the same probe reaches ≈ 0.96.
    "prototype": dict(
        sttc_t_amp=-0.6, sttc_t_shift_deg=25.0, cd_qrs_width=2.4, cd_pr_shift_deg=35.0, hyp_r_amp=1.8, hyp_s_amp=2.5,
        hyp_t_amp=-0.3, hyp_precordial_gain=2.0, hr_abnormal=(55.0, 95.0), hr_cd=(45.0, 80.0), ti_jitter_deg=3.0,
        ai_jitter=0.08, bi_jitter=0.05, lead_gain_sd=0.0, mi_territories=False),
}


def preset(name: str, **overrides: Any) -> SynthECGConfig:
    """A named preset with optional overrides: ``preset("default", n_records=400, seed=1)``."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    return SynthECGConfig(**{**PRESETS[name], **overrides})


# ------------------------------------------------------------------------------------------- labels

def _abnormal_weights(cfg: SynthECGConfig) -> np.ndarray:
    w = np.asarray(cfg.abnormal_prior, float)
    return w / w.sum()


def sample_labels(rng: np.random.Generator, cfg: SynthECGConfig) -> np.ndarray:
    """One multi-hot int8 [5] label: NORM alone with p_norm, else 1 or 2 abnormal classes (weighted, no repeats)."""
    y = np.zeros(len(CLASSES), np.int8)
    if rng.random() < cfg.p_norm:
        y[0] = 1
        return y
    k = 2 if rng.random() < cfg.p_two else 1
    y[1 + rng.choice(4, size=k, replace=False, p=_abnormal_weights(cfg))] = 1
    return y


def expected_label_rates(cfg: SynthECGConfig) -> np.ndarray:
    """Exact marginal P(class) of :func:`sample_labels` (label flips redraw from the same law, so it is unchanged)."""
    w = _abnormal_weights(cfg)
    two = np.zeros(4)  # P(class j among 2 draws without replacement, numpy's sequential weighted scheme)
    for a in range(4):
        for b in range(4):
            if a != b and w[a] < 1:
                pab = w[a] * w[b] / (1 - w[a])
                two[a] += pab
                two[b] += pab
    ab = (1 - cfg.p_two) * w + cfg.p_two * two
    return np.concatenate([[cfg.p_norm], (1 - cfg.p_norm) * ab])


# ---------------------------------------------------------------------------------------- ECGSYN core

def _rk4_linear_coeffs(h: float) -> tuple[float, float, float, float]:
    """RK4 on du/dt = g(t) - u is u' = rho·u + c0·g(t) + cm·g(t+h/2) + c1·g(t+h); return (rho, c0, cm, c1)."""
    def step(u: float, g0: float, gm: float, g1: float) -> float:
        k1 = g0 - u
        k2 = gm - (u + h / 2 * k1)
        k3 = gm - (u + h / 2 * k2)
        k4 = g1 - (u + h * k3)
        return u + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return step(1, 0, 0, 0), step(0, 1, 0, 0), step(0, 0, 1, 0), step(0, 0, 0, 1)


def rr_series(rng: np.random.Generator, hr: float, hr_std: float, total_s: float, sfint: int,
              lfhf_ratio: float = 0.5) -> np.ndarray:
    """ECGSYN's RR tachogram held constant within each beat (neurokit2's ``rrn``), at sfint Hz over total_s.

    The spectrum is neurokit2's (Mayer waves at 0.1 Hz, respiration at 0.25 Hz); it is upsampled
    linearly rather than with ``scipy.ndimage.zoom``, whose zero last sample hangs neurokit2's beat
    loop, and RR is floored at 0.2 s, so the beat loop always advances.
    """
    n = int(2 ** np.ceil(np.log2(max(total_s + 2, 16))))  # seconds of 1-Hz RR, a power of two as in ECGSYN
    w = np.arange(n) * 2 * np.pi / n
    c = 2 * np.pi * 0.01
    hw = (lfhf_ratio * np.exp(-0.5 * ((w - 2 * np.pi * 0.1) / c) ** 2)
          + np.exp(-0.5 * ((w - 2 * np.pi * 0.25) / c) ** 2)) / np.sqrt(2 * np.pi * c ** 2)
    sw = 0.5 * np.sqrt(np.concatenate([hw[: n // 2], hw[n // 2 - 1:: -1]]))
    ph0 = 2 * np.pi * rng.uniform(size=n // 2 - 1)
    ph = np.concatenate([[0], ph0, [0], -ph0[::-1]])
    x = np.fft.ifft(sw * np.exp(1j * ph)).real / n
    rr0 = 60 / hr + x * (60 * hr_std / hr ** 2) / x.std()
    k = int(np.ceil(total_s * sfint)) + 1
    rr = np.maximum(np.interp(np.arange(k) / sfint, np.arange(n), rr0), 0.2)
    rrn = np.empty(k)
    i, tecg = 0, 0.0
    while i < k:  # each beat keeps the RR value at its onset (ECGSYN's rrn)
        tecg += rr[i]
        ip = max(int(round(tecg * sfint)), i + 1)
        rrn[i:ip] = rr[i]
        i = ip
    return rrn


def ecgsyn_batch(hr: np.ndarray, ti: np.ndarray, ai: np.ndarray, bi: np.ndarray, rngs: list[np.random.Generator],
                 *, hr_std: np.ndarray | float = 1.0, lead_amp: np.ndarray | None = None, fs: int = FS,
                 duration_s: float = DURATION_S, sfint: int = 500, burn_in_s: float = 0.0,
                 lfhf_ratio: float = 0.5) -> np.ndarray:
    """Noise-free 12-lead ECGSYN for a batch; returns float64 [B, duration_s·fs, 12], each lead in [-0.4, 1.2].

    ``hr`` [B] in bpm; ``ti`` [B,5] degrees, ``ai`` [B,5], ``bi`` [B,5] as in ``nk.ecg_simulate``
    (before its heart-rate adjustment). ``lead_amp`` [B,12,5] multiplies the lead matrix per record
    (default ones: exactly neurokit2's leads). ``rngs`` (one per record) drive the RR process.
    With ``burn_in_s=0`` every record starts on an R peak, as neurokit2's do.
    """
    hr = np.asarray(hr, float)
    B = len(hr)
    hr_std = np.broadcast_to(np.asarray(hr_std, float), (B,))
    if len(rngs) != B:
        raise ValueError(f"need one rng per record: {B} heart rates, {len(rngs)} rngs")
    if sfint % fs:
        raise ValueError(f"sfint ({sfint}) must be a multiple of fs ({fs})")
    q = sfint // fs
    n_out = int(round(duration_s * fs))
    burn = int(round(burn_in_s * fs)) * q
    K = burn + n_out * q  # RK4 steps needed (the last output sample is at step K - q)
    h = 1.0 / sfint

    # ECGSYN's heart-rate adjustment of widths and positions
    hrfact = np.sqrt(hr / 60)[:, None]
    hrfact2 = np.sqrt(hrfact)
    bi = np.asarray(bi, float) * hrfact
    ti = np.deg2rad(np.asarray(ti, float)) * np.concatenate([hrfact2, hrfact, np.ones_like(hrfact), hrfact, hrfact2], 1)

    # phase θ on the half-step grid, exact for the piecewise-constant angular rate
    w = np.stack([2 * np.pi / rr_series(r, hr[b], hr_std[b], K * h, sfint, lfhf_ratio)[:K] for b, r in enumerate(rngs)])
    half = np.repeat(w * (h / 2), 2, axis=1)  # [B, 2K]
    theta = np.concatenate([np.zeros((B, 1)), np.cumsum(half, axis=1)], axis=1)  # [B, 2K+1]

    # unit-amplitude forcing of each wave: g_i(θ) = -Δθ_i exp(-Δθ_i² / 2b_i²)
    d = theta[:, None, :] - ti[:, :, None]  # [B, 5, 2K+1]
    d -= np.round(d / (2 * np.pi)) * (2 * np.pi)
    g = -d * np.exp(-0.5 * (d / bi[:, :, None]) ** 2)
    del d
    t_half = np.arange(2 * K + 1) * (h / 2)
    zbase = 0.005 * np.sin(2 * np.pi * 0.25 * t_half)

    rho, c0, cm, c1 = _rk4_linear_coeffs(h)
    drive = c0 * g[..., 0:-1:2] + cm * g[..., 1::2] + c1 * g[..., 2::2]  # [B, 5, K]
    u = lfilter([1.0], [1.0, -rho], drive, axis=-1)  # u[k] is the state after step k+1 (u(0) = 0)
    dbase = c0 * zbase[0:-1:2] + cm * zbase[1::2] + c1 * zbase[2::2]
    zb = lfilter([1.0], [1.0, -rho], dbase, zi=[rho * 0.04])[0]  # z(0) = 0.04 as in ECGSYN

    idx = burn + np.arange(n_out) * q  # state index: 0 is t = 0
    def at(x: np.ndarray, u0: float) -> np.ndarray:
        full = np.concatenate([np.full(x.shape[:-1] + (1,), u0), x[..., :-1]], axis=-1)
        return full[..., idx]
    basis = at(u, 0.0)  # [B, 5, n_out]
    base = at(zb, 0.04)  # [n_out]
    amp = GAMMA[None] * np.asarray(ai, float)[:, None, :]  # [B, 12, 5]
    if lead_amp is not None:
        amp = amp * lead_amp
    z = base[None, :, None] + np.einsum("bit,bli->btl", basis, amp)  # [B, n_out, 12]
    zmin, zmax = z.min(1, keepdims=True), z.max(1, keepdims=True)
    return (z - zmin) * 1.6 / np.maximum(zmax - zmin, 1e-12) - 0.4


# --------------------------------------------------------------------------------- class-conditional

def _lerp(s: float, a: float, b: float) -> float:
    return a + s * (b - a)


def _record_params(cfg: SynthECGConfig, rng: np.random.Generator) -> dict[str, Any]:
    """Labels, severities, wave parameters and nuisances of one record (all drawn from its own rng)."""
    y = sample_labels(rng, cfg)
    ti = TI0 + rng.normal(0, cfg.ti_jitter_deg, 5)
    ai = AI0 * (1 + rng.normal(0, cfg.ai_jitter, 5))
    bi = BI0 * (1 + rng.normal(0, cfg.bi_jitter, 5))
    lead_amp = np.ones((len(LEADS), 5))
    post_gain = np.ones(len(LEADS))
    sev = np.zeros(len(CLASSES))
    hr = rng.uniform(*(cfg.hr_norm if y[0] else cfg.hr_abnormal))
    territory = ""
    if y[1]:  # MI: deep, wide Q and T inversion (amplitudes in one territory; the width change is global)
        s = sev[1] = rng.uniform(*cfg.severity)
        bi[Q] *= _lerp(s, 1, cfg.mi_q_width)
        leads = list(range(len(LEADS)))
        if cfg.mi_territories:
            territory = str(rng.choice(sorted(TERRITORIES)))
            leads = list(TERRITORIES[territory])
        lead_amp[leads, Q] *= _lerp(s, 1, cfg.mi_q_amp)
        lead_amp[leads, T] *= _lerp(s, 1, cfg.mi_t_amp)
    if y[2]:  # STTC: T flattened or inverted, pulled into the ST segment
        s = sev[2] = rng.uniform(*cfg.severity)
        ai[T] *= _lerp(s, 1, cfg.sttc_t_amp)
        ti[T] -= _lerp(s, 0, cfg.sttc_t_shift_deg)
        bi[T] *= _lerp(s, 1, cfg.sttc_t_width)
    if y[3]:  # CD: wide QRS, long PR, slower rate
        s = sev[3] = rng.uniform(*cfg.severity)
        bi[Q:S + 1] *= _lerp(s, 1, cfg.cd_qrs_width)
        ti[P] -= _lerp(s, 0, cfg.cd_pr_shift_deg)
        hr = rng.uniform(*cfg.hr_cd)
    if y[4]:  # HYP: tall R, deep S, strain T, high precordial voltage
        s = sev[4] = rng.uniform(*cfg.severity)
        ai[R] *= _lerp(s, 1, cfg.hyp_r_amp)
        ai[S] *= _lerp(s, 1, cfg.hyp_s_amp)
        ai[T] *= _lerp(s, 1, cfg.hyp_t_amp)
        post_gain[PRECORDIAL] = _lerp(s, 1, cfg.hyp_precordial_gain)
    written = sample_labels(rng, cfg) if rng.random() < cfg.label_flip else y
    return dict(
        y=written, y_true=y, severity=sev, territory=territory, hr=hr, hr_std=rng.uniform(*cfg.hr_std),
        ti=ti, ai=ai, bi=bi, lead_amp=lead_amp, post_gain=post_gain, gain=rng.uniform(*cfg.gain),
        lead_gain=np.exp(rng.normal(0, cfg.lead_gain_sd, len(LEADS))), noise=rng.uniform(*cfg.noise_mv),
        wander=rng.uniform(*cfg.wander_mv), wander_hz=rng.uniform(*cfg.wander_hz),
        wander_phase=rng.uniform(0, 2 * np.pi), wander_lead=rng.uniform(0.5, 1.0, len(LEADS)),
        rr_seed=int(rng.integers(2 ** 63)), noise_seed=int(rng.integers(2 ** 63)),
    )


def generate(cfg: SynthECGConfig | None = None) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Simulate ``cfg.n_records`` records: float32 [N, n_samples, 12] mV, int8 [N, 5] labels, per-record info.

    Record i depends only on (cfg.seed, i) and the knobs, not on the batch size. ``info`` holds
    ``y_true`` (labels before flips), ``severity`` [N, 5], ``hr``, ``territory`` (MI leads, '' if none).
    """
    cfg = cfg or SynthECGConfig()
    params = [_record_params(cfg, np.random.default_rng([cfg.seed, i])) for i in range(cfg.n_records)]
    X = np.empty((cfg.n_records, cfg.n_samples, len(LEADS)), np.float32)
    t = np.arange(cfg.n_samples) / cfg.fs
    for lo in range(0, cfg.n_records, cfg.batch_size):
        ps = params[lo: lo + cfg.batch_size]
        stack = lambda k, ps=ps: np.stack([p[k] for p in ps])  # noqa: E731
        z = ecgsyn_batch(stack("hr"), stack("ti"), stack("ai"), stack("bi"),
                         [np.random.default_rng(p["rr_seed"]) for p in ps], hr_std=stack("hr_std"),
                         lead_amp=stack("lead_amp"), fs=cfg.fs, duration_s=cfg.duration_s, sfint=cfg.sfint,
                         burn_in_s=cfg.burn_in_s, lfhf_ratio=cfg.lfhf_ratio)
        for j, p in enumerate(ps):
            wave = np.sin(2 * np.pi * p["wander_hz"] * t + p["wander_phase"])
            wander = p["wander"] * wave[:, None] * p["wander_lead"]
            noise = np.random.default_rng(p["noise_seed"]).normal(0, p["noise"], z[j].shape)
            X[lo + j] = z[j] * (p["post_gain"] * p["lead_gain"] * p["gain"]) + wander + noise
    Y = np.stack([p["y"] for p in params]).astype(np.int8)
    info = {k: np.stack([p[k] for p in params]) for k in ("y_true", "severity", "hr", "territory")}
    return X, Y, info


# --------------------------------------------------------------------------------------- PTB-XL layout

def record_stem(ecg_id: int, suffix: str = "lr") -> str:
    """PTB-XL's relative record path without extension, e.g. ``records100/00000/00001_lr``."""
    top = "records100" if suffix == "lr" else "records500"
    return f"{top}/{ecg_id // 1000 * 1000:05d}/{ecg_id:05d}_{suffix}"


def _folds(labels: np.ndarray, rng: np.random.Generator, n_folds: int = 10) -> np.ndarray:
    """strat_fold 1..n_folds: a seeded shuffle, grouped by label pattern, dealt round robin (≈ stratified)."""
    key = labels.astype(np.int64) @ (1 << np.arange(labels.shape[1]))
    order = np.lexsort((rng.permutation(len(labels)), key))
    folds = np.empty(len(labels), np.int64)
    folds[order] = np.arange(len(labels)) % n_folds + 1
    return folds


def _scp_codes(y: np.ndarray) -> str:
    codes = {CLASS_CODE[c]: 100.0 for c, v in zip(CLASSES, y) if v}
    codes["SR"] = 0.0  # a non-diagnostic rhythm code, as most PTB-XL records carry
    return repr(codes)


def write_sha256sums(root: str | os.PathLike, name: str = "SHA256SUMS.txt") -> Path:
    """Write ``<sha256>  <relative path>`` for every file under ``root`` (except the list itself), sorted."""
    root = Path(root)
    rels = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.name != name)
    with atomic_path(root / name) as tmp:
        tmp.write_text("".join(f"{sha256_file(root / r)}  {r}\n" for r in rels))
    return root / name


def write_ptbxl_layout(records: np.ndarray, labels: np.ndarray, out_dir: str | os.PathLike, *, fs: int = FS,
                       seed: int = 0, n_folds: int = 10) -> Path:
    """Write records [N, T, 12] (mV) and multi-hot labels [N, 5] as a PTB-XL folder; return ``out_dir``.

    Contents: WFDB records ``records100/NNNNN/xxxxx_lr.{hea,dat}`` (format 16, gain 1000/mV,
    baseline 0, leads I … V6), ``ptbxl_database.csv`` (ecg_id, patient_id, age, sex, scp_codes as a
    dict literal, strat_fold, filename_lr, filename_hr), ``scp_statements.csv`` and
    ``SHA256SUMS.txt``. ``filename_hr`` names the 500 Hz path the real data has; no 500 Hz files are
    written. The folder is built beside ``out_dir`` and renamed into place when complete, so a
    failure leaves nothing; an existing non-empty ``out_dir`` is refused.
    """
    import wfdb

    records, labels = np.asarray(records), np.asarray(labels)
    if records.ndim != 3 or records.shape[2] != len(LEADS):
        raise ValueError(f"records must be [N, T, {len(LEADS)}], got {records.shape}")
    if labels.shape != (len(records), len(CLASSES)):
        raise ValueError(f"labels must be [{len(records)}, {len(CLASSES)}], got {labels.shape}")
    if not np.isfinite(records).all() or np.abs(records).max(initial=0) >= 32.767:
        raise ValueError("records must be finite and within ±32.767 mV (int16 at gain 1000)")
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an empty folder; refusing to write over it")
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_writers_temps(out.parent)
    tmp = temp_dir_beside(out)
    try:
        rng = np.random.default_rng([seed, 1])
        folds = _folds(labels, rng, n_folds)
        rows = []
        for i, (x, y) in enumerate(zip(records, labels)):
            ecg_id = i + 1
            stem = record_stem(ecg_id)
            (tmp / stem).parent.mkdir(parents=True, exist_ok=True)
            wfdb.wrsamp(Path(stem).name, fs=fs, units=["mV"] * len(LEADS), sig_name=list(LEADS),
                        p_signal=np.asarray(x, np.float64), fmt=["16"] * len(LEADS), adc_gain=[1000.0] * len(LEADS),
                        baseline=[0] * len(LEADS), write_dir=str((tmp / stem).parent))
            rows.append(dict(ecg_id=ecg_id, patient_id=float(ecg_id), age=float(rng.integers(18, 90)),
                             sex=int(rng.integers(2)), scp_codes=_scp_codes(y), strat_fold=int(folds[i]),
                             filename_lr=stem, filename_hr=record_stem(ecg_id, "hr")))
        with open(tmp / "ptbxl_database.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["ecg_id", "patient_id", "age", "sex",
                               "scp_codes", "strat_fold", "filename_lr", "filename_hr"])
            w.writeheader()
            w.writerows(rows)
        with open(tmp / "scp_statements.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["", "description", "diagnostic", "form", "rhythm", "diagnostic_class", "diagnostic_subclass"])
            for code, desc, diag, cls, sub in SCP_STATEMENTS:
                w.writerow([code, desc, "" if diag is None else diag, "", 1.0 if code == "SR" else "", cls, sub])
        write_sha256sums(tmp)
        tmp.chmod(0o755)
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
