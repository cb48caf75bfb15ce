"""The GPU check starts and runs every phase on CPU (``--smoke``): the same script a GPU session runs once."""

import json

import pytest

from benchmarks import gpu_check


def test_gpu_check_smoke_runs_every_phase_and_writes_one_results_file(tmp_path):
    out = tmp_path / "gpu_check.json"
    gpu_check.main(["--smoke", "--out", str(out), "--budget", "400", "--cores", "2"])
    res = json.loads(out.read_text())
    assert res["smoke"] and res["environment"]["torch"]
    for phase in ("hyperstep", "throughput", "rehearsal"):
        assert res[phase]["rc"] == 0, (phase, res[phase]["stderr_tail"])
    assert "Hyper-step (K=1, P=1) cost in plain PT steps" in res["hyperstep"]["stdout"]
    assert "PT throughput, tiny size" in res["throughput"]["stdout"]
    # the dry run of the rehearsal profile on the copy: the whole paper grid, one seed (pretrain jobs of every domain)
    dry = res["rehearsal"]["stdout"] + res["rehearsal"]["stderr_tail"]
    for kind in ("acquire_ppi", "pretrain_ecg_meta", "finetune_digits"):
        assert kind in dry, dry[-2000:]


def test_gpu_check_refuses_to_run_without_cuda_unless_smoke(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as err:
        gpu_check.main(["--out", str(tmp_path / "r.json")])
    assert "no CUDA device" in str(err.value) and "no CUDA device" in json.loads((tmp_path / "r.json").read_text())["error"]
