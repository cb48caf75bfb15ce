"""The stand-ins of the paper's downloads (metapt.standin) at a small scale: written by the same builders
as the full-size ones, served by the loopback mirror, read by the rehearsal profile's own acquire and
preprocess code (docs/rehearsal.md has the full-size run)."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

from metapt import pipeline, standin
from metapt.config import load_params
from metapt.domain import domains, processed_dir
from metapt.io import read_json

ROOT = Path(__file__).resolve().parents[2]
SCALE = 0.004  # 352 bio graphs, 87 PTB-XL records, 240 + 40 digits


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    root = tmp_path_factory.mktemp("standins")
    files = standin.build(root, scale=SCALE)
    srv = standin.serve_in_thread(root, port=0)
    yield root, f"http://127.0.0.1:{srv.server_address[1]}", files
    srv.shutdown()


def _get(url: str, headers: dict | None = None):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return opener.open(urllib.request.Request(url, headers=headers or {}), timeout=10)


def test_every_domain_declares_a_standin_and_the_rehearsal_profile_names_its_files(mirror):
    root, _, files = mirror
    reh = load_params(ROOT / "params.yaml").profiles["rehearsal"]
    assert set(files) == {d.name for d in domains()}
    for d in domains():
        served = urlparse(getattr(reh, d.name).data.url).path.lstrip("/")
        names = {str(f.relative_to(root)) for f in files[d.name]}
        assert any(n == served or n.startswith(served) for n in names), (d.name, served, names)


def test_mirror_resumes_with_range_and_serves_nothing_outside_its_root(mirror):
    root, base, files = mirror
    f = files["ppi"][0]
    body = f.read_bytes()
    with _get(f"{base}/{f.name}") as r:
        assert r.status == 200 and int(r.headers["Content-Length"]) == len(body) and r.read() == body
    with _get(f"{base}/{f.name}", {"Range": "bytes=1000-"}) as r:
        assert r.status == 206 and r.headers["Content-Range"] == f"bytes 1000-{len(body) - 1}/{len(body)}" and r.read() == body[1000:]
    (root.parent / "outside.txt").write_text("not served")
    for bad in ("/../outside.txt", "/%2e%2e/outside.txt", "/missing.zip", "/"):
        with pytest.raises(urllib.error.HTTPError) as err:
            _get(base + bad)
        assert err.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as err:
        _get(f"{base}/{f.name}", {"Range": f"bytes={len(body)}-"})
    assert err.value.code == 416


def test_rehearsal_data_stages_read_the_standins(mirror, tmp_path, monkeypatch):
    """acquire → preprocess of every domain, on the paper code path (bio pickle, PTB-XL WFDB, MNIST IDX)."""
    _, base, _ = mirror
    reh = load_params(ROOT / "params.yaml").profiles["rehearsal"]
    local = {d.name: getattr(reh, d.name).model_copy(update={"data": getattr(reh, d.name).data.model_copy(
        update={"url": base + urlparse(getattr(reh, d.name).data.url).path})}) for d in domains()}
    profile = reh.model_copy(update=local)
    monkeypatch.chdir(tmp_path)
    for d in domains():
        pipeline.acquire(d.name, profile)
        pipeline.preprocess(d.name, profile)
    from metapt.ecg.standin import N_RECORDS
    from metapt.ppi.standin import N_GRAPHS

    ppi = read_json(processed_dir("ppi") / "manifest.json")
    assert ppi["n_graphs"] == round(N_GRAPHS * SCALE) and ppi["source"]["source"] == "bio"
    assert ppi["splits"]["test_easy"] > 0 and ppi["splits"]["metaft_train_partial"] > 0
    assert ppi["splits"]["train_val"] + ppi["splits"]["test"] == ppi["n_graphs"] and ppi["splits"]["n_ft_tasks"] == 40  # a count, not np.size(40)
    assert read_json(processed_dir("ecg") / "manifest.json")["n_records"] == round(N_RECORDS["1.0.3"] * SCALE)
    digits = read_json(processed_dir("digits") / "manifest.json")
    assert digits["n_digits"] == round(60_000 * SCALE) + round(10_000 * SCALE)
