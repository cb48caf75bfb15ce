"""The real-data path for the bio set, end to end against a local HTTP server serving a format-exact fixture.

Every failure must name its cause and leave nothing partial in the destination folder.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from pathlib import Path

import pytest
import torch
from torch_geometric.data import Batch

from metapt.download import ChecksumError, CorruptArchiveError, DownloadError, DownloadInterrupted, UnsafeArchiveError, download, safe_extract
from metapt.ppi.acquire import fetch_bio
from metapt.ppi.graphs import EgoGraph
from metapt.ppi.legacy import LEGACY_MEMBER, PAPER_SPECIES, InvariantError, convert_legacy, load_converted
from tests.fixtures import legacy_fixture as lf

N_PT, N_FT = 50, 40


@pytest.fixture(scope="module")
def graphs():
    return lf.make_graphs(20, N_PT, N_FT)


@pytest.fixture(scope="module")
def pt_bytes(graphs) -> bytes:
    return lf.legacy_bytes(graphs)


@pytest.fixture(scope="module")
def zip_bytes(pt_bytes) -> bytes:
    return lf.bio_zip_bytes(pt_bytes)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _fetch(url, folder, **kw):
    return fetch_bio(url, folder, progress=False, n_pt_tasks=N_PT, n_ft_tasks=N_FT, **kw)


def test_fixture_is_the_legacy_format(tmp_path, pt_bytes):
    """Non-zip torch serialization; loads with weights_only only as an old-PyG object (the error users hit)."""
    p = tmp_path / "g.pt"
    p.write_bytes(pt_bytes)
    assert not zipfile.is_zipfile(p)
    data, slices = torch.load(p, weights_only=True)
    assert set(slices) == set(lf.collate(lf.make_graphs(2))[1])
    with pytest.raises(RuntimeError, match="older version of PyG"):
        data.keys()


def test_download_extract_convert_load_batch(tmp_path, server, zip_bytes, pt_bytes, graphs):
    url = server.serve("ok/bio_dataset.zip", zip_bytes)
    got = _fetch(url, tmp_path, require_species=PAPER_SPECIES)
    sha = hashlib.sha256(zip_bytes).hexdigest()
    assert (got.sha256, got.size) == (sha, len(zip_bytes))  # trust on first use: recorded for pinning
    tag = sha[:12]
    # the zip (the original, untouched) and the converted file only: the extracted pickle is removed once
    # converted (4.1 GB at full size, which DVC would hash and cache with the stage's output)
    assert _leftovers(tmp_path) == ["bio_dataset.zip", f"bio_supervised_{tag}.pt"]
    assert (tmp_path / "bio_dataset.zip").read_bytes() == zip_bytes
    with zipfile.ZipFile(tmp_path / "bio_dataset.zip") as zf:
        assert zf.read(LEGACY_MEMBER) == pt_bytes
    (tmp_path / f"bio_dataset_{tag}").mkdir()  # as a kill between conversion and clean-up leaves it
    (tmp_path / f"bio_dataset_{tag}" / "part").write_bytes(b"x")
    assert _fetch(url, tmp_path).path == got.path and _leftovers(tmp_path) == ["bio_dataset.zip", f"bio_supervised_{tag}.pt"]

    ds = load_converted(got.path)
    assert len(ds) == 20 and all(isinstance(ds[i], EgoGraph) for i in range(20))
    for i in (0, 7, 19):
        g, d = graphs[i], ds[i]
        assert torch.equal(d.edge_index, g.edge_index) and torch.equal(d.edge_attr, g.edge_attr)
        assert d.go_target_pretrain.dtype == torch.uint8 and d.go_target_pretrain.shape == (N_PT,)
        assert torch.equal(d.go_target_downstream.long(), g.go_target_downstream)
        assert int(d.species_id) == int(g.species_id)
    assert 9606 in {int(ds[i].species_id) for i in range(20)}

    items = [ds[i] for i in (3, 4, 5)]
    b = Batch.from_data_list(items)
    starts = torch.tensor([0, items[0].num_nodes, items[0].num_nodes + items[1].num_nodes])
    local = torch.cat([d.center_node_idx for d in items])
    assert torch.equal(b.center_node_idx, local + starts)
    assert torch.equal(b.batch[b.center_node_idx], torch.arange(3))
    parity = Batch.from_data_list([load_converted(got.path, offset_center=False)[i] for i in (3, 4, 5)])
    assert torch.equal(parity.center_node_idx, local)  # the authors' quirk, kept switchable

    n_requests = len(server.log)
    again = _fetch(url, tmp_path, sha256=sha, size=len(zip_bytes))
    assert again == got and len(server.log) == n_requests  # pinned and present: no network, no redo


@pytest.mark.parametrize("kw, what", [({"sha256": "0" * 64}, "SHA-256"), ({"size": 123}, "size")])
def test_wrong_hash_or_size_deletes_the_download(tmp_path, server, zip_bytes, kw, what):
    url = server.serve("hash/bio_dataset.zip", zip_bytes)
    actual = hashlib.sha256(zip_bytes).hexdigest() if what == "SHA-256" else len(zip_bytes)
    expected = kw.get("sha256", kw.get("size"))
    msg = rf"{what} mismatch for .*bio_dataset.zip: expected {expected}, got {actual}"
    with pytest.raises(ChecksumError, match=msg):
        download(url, tmp_path / "bio_dataset.zip", progress=False, **kw)
    assert _leftovers(tmp_path) == []


def test_truncated_archive_pinned_is_a_checksum_error(tmp_path, server, zip_bytes):
    url = server.serve("trunc1/bio_dataset.zip", zip_bytes[: len(zip_bytes) // 2])
    with pytest.raises(ChecksumError, match="SHA-256 mismatch"):
        _fetch(url, tmp_path, sha256=hashlib.sha256(zip_bytes).hexdigest())
    assert _leftovers(tmp_path) == []


def test_truncated_archive_unpinned_is_refused_and_removed(tmp_path, server, zip_bytes):
    url = server.serve("trunc2/bio_dataset.zip", zip_bytes[: len(zip_bytes) // 2])
    with pytest.raises(CorruptArchiveError, match="bio_dataset.zip is not a readable zip archive"):
        _fetch(url, tmp_path)
    assert _leftovers(tmp_path) == []


def test_path_traversal_entry_is_refused_before_writing(tmp_path, server, pt_bytes):
    url = server.serve("evil/bio_dataset.zip", lf.bio_zip_bytes(pt_bytes, {"../evil.txt": b"pwned"}))
    dest = tmp_path / "data"
    with pytest.raises(UnsafeArchiveError, match=r"entry '\.\./evil\.txt' is a path with a '\.\.' component"):
        _fetch(url, dest)
    assert _leftovers(dest) == [] and not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("name, why", [("/abs.txt", "an absolute path"), ("C:/win.txt", "an absolute path"),
                                       ("a/../../b.txt", "'..'"), ("link", "a symbolic link")])
def test_safe_extract_refuses_escaping_entries(tmp_path, name, why):
    info = zipfile.ZipInfo(name)
    if name == "link":
        info.external_attr = 0o120777 << 16
    zp = tmp_path / "a.zip"
    with zipfile.ZipFile(zp, "w") as zf:
        zf.writestr("ok.txt", b"fine")
        zf.writestr(info, b"../../etc")
    with pytest.raises(UnsafeArchiveError, match=re.escape(f"entry {name!r} is ") + f".*{re.escape(why)}"):
        safe_extract(zp, tmp_path / "out")
    assert _leftovers(tmp_path) == ["a.zip"]


def test_safe_extract_corrupt_member_leaves_nothing(tmp_path, zip_bytes):
    bad = bytearray(zip_bytes)
    off = bad.index(b"geometric_data_processed.pt") + 200  # inside the first member's compressed data
    bad[off:off + 64] = bytes(64)
    zp = tmp_path / "b.zip"
    zp.write_bytes(bytes(bad))
    with pytest.raises(CorruptArchiveError, match="b.zip is corrupt"):
        safe_extract(zp, tmp_path / "out")
    assert _leftovers(tmp_path) == ["b.zip"]


def test_http_404_is_a_clear_error(tmp_path, server):
    url = server.serve("present.zip", b"x").replace("present.zip", "missing.zip")
    with pytest.raises(DownloadError, match=r"cannot download .*missing.zip: HTTP 404"):
        download(url, tmp_path / "missing.zip", progress=False)
    assert _leftovers(tmp_path) == []


def test_zip_without_processed_file(tmp_path, server):
    url = server.serve("nopt/bio_dataset.zip", lf.bio_zip_bytes(None))
    with pytest.raises(FileNotFoundError, match=f"bio_dataset.zip has no entry {LEGACY_MEMBER}"):
        _fetch(url, tmp_path)
    assert _leftovers(tmp_path) == []


def test_interrupted_download_resumes_with_range(tmp_path, server, zip_bytes):
    url = server.serve("resume/bio_dataset.zip", zip_bytes)
    server.cut["/resume/bio_dataset.zip"] = 1000
    dest = tmp_path / "bio_dataset.zip"
    with pytest.raises(DownloadInterrupted, match="interrupted after 1000 of .* call again to resume"):
        download(url, dest, progress=False)
    assert _leftovers(tmp_path) == ["bio_dataset.zip.part"]
    got = download(url, dest, sha256=hashlib.sha256(zip_bytes).hexdigest(), progress=False)
    assert ("/resume/bio_dataset.zip", "bytes=1000-") in server.log
    assert got.path.read_bytes() == zip_bytes and _leftovers(tmp_path) == ["bio_dataset.zip"]


@pytest.mark.parametrize("ignore_range", [True, False], ids=["server-ignores-range", "stale-part-longer-than-file"])
def test_resume_falls_back_to_a_full_download(tmp_path, server, zip_bytes, ignore_range):
    name = f"fallback{int(ignore_range)}/bio_dataset.zip"
    url = server.serve(name, zip_bytes)
    if ignore_range:
        server.no_range.add(f"/{name}")  # answers 200 with the whole file
    part = tmp_path / "bio_dataset.zip.part"
    part.write_bytes(b"junk" * (10 if ignore_range else len(zip_bytes)))  # else: the server answers 416
    got = download(url, tmp_path / "bio_dataset.zip", sha256=hashlib.sha256(zip_bytes).hexdigest(), progress=False)
    assert got.path.read_bytes() == zip_bytes and _leftovers(tmp_path) == ["bio_dataset.zip"]


def _corrupt(graphs, what):
    gs = lf.make_graphs(20, N_PT, N_FT)
    g = gs[7]
    if what == "centre":
        g.center_node_idx = torch.tensor([g.x.shape[0]])
    elif what == "channel8":
        g.edge_attr[2, 8] = 1.0
    elif what == "pairs":
        g.edge_index[:, 1] = g.edge_index[:, 0]
    elif what == "x":
        g.x[0, 0] = 2.0
    elif what == "label":
        g.go_target_downstream[3] = 2
    elif what == "width":
        g.go_target_pretrain = g.go_target_pretrain[:-1]
    return gs


@pytest.mark.parametrize("what, invariant", [
    ("centre", "center_node_idx within graph"), ("channel8", "edge_attr channels 7,8 are zero"),
    ("pairs", "edges as consecutive reverse pairs"), ("x", "x is ones"),
    ("label", "go_target_downstream is 0/1"), ("width", f"go_target_pretrain width {N_PT}"),
])
def test_invariant_violations_name_invariant_and_graph(tmp_path, graphs, what, invariant):
    src = tmp_path / "g.pt"
    src.write_bytes(lf.legacy_bytes(_corrupt(graphs, what)))
    with pytest.raises(InvariantError, match=rf"invariant '{re.escape(invariant)}.*' violated at graph 7"):
        convert_legacy(src, tmp_path / "c.pt", n_pt_tasks=N_PT, n_ft_tasks=N_FT)
    assert _leftovers(tmp_path) == ["g.pt"]


def test_missing_species_and_in_place_conversion_are_refused(tmp_path, pt_bytes):
    src = tmp_path / "g.pt"
    src.write_bytes(pt_bytes)
    with pytest.raises(InvariantError, match=r"'species ids present' violated: no graph of species \[12345\]"):
        convert_legacy(src, tmp_path / "c.pt", n_pt_tasks=N_PT, n_ft_tasks=N_FT, require_species=[9606, 12345])
    with pytest.raises(ValueError, match="refusing to overwrite the original"):
        convert_legacy(src, src, n_pt_tasks=N_PT, n_ft_tasks=N_FT)
    assert _leftovers(tmp_path) == ["g.pt"] and src.read_bytes() == pt_bytes


def test_trial_runs_on_downloaded_real_format_data(tmp_path, server):
    """Download → convert → the same experiment code as the synthetic data (the paper profile's path)."""
    from metapt.ppi.settings import PPIConfig
    from metapt.ppi.trial import run_trial
    from tests.unit.test_ppi_experiment import TINY

    url = server.serve("trial/bio_dataset.zip", lf.bio_zip_bytes(lf.legacy_bytes(lf.make_graphs(120, N_PT, N_FT))))
    got = _fetch(url, tmp_path / "data")
    cfg = PPIConfig.model_validate({**TINY, "ft_budget": None})
    rows = run_trial(None, ["uniform"], [0], cfg, tmp_path / "out", {}, bio=got.path, modes=["linear"], progress=False)
    assert rows[0]["preset"] == "bio" and 0 <= rows[0]["ft"]["linear"]["test_hard"] <= 1


def test_checksum_is_pinned_in_config_on_first_use(tmp_path, server, zip_bytes):
    import yaml

    from metapt.ppi.download import fetch_pinned

    url = server.serve("pin/bio_dataset.zip", zip_bytes)
    cfg = tmp_path / "bio_data.yaml"
    cfg.write_text(f"# a comment that stays\nurl: {url}\ndata_dir: {tmp_path / 'data'}\nsha256: null\nsize: null\n")
    got = fetch_pinned(cfg, progress=False, n_pt_tasks=N_PT, n_ft_tasks=N_FT)
    pinned = yaml.safe_load(cfg.read_text())
    assert (pinned["sha256"], pinned["size"]) == (hashlib.sha256(zip_bytes).hexdigest(), len(zip_bytes)) == (got.sha256, got.size)
    assert cfg.read_text().startswith("# a comment that stays")
    # a different archive at the same URL now fails the pinned checksum, and leaves nothing behind
    (tmp_path / "data" / "bio_dataset.zip").unlink()
    url2 = server.serve("pin/bio_dataset.zip", zip_bytes[:-1] + b"x")
    assert url2 == url
    with pytest.raises(ChecksumError, match="SHA-256 mismatch"):
        fetch_pinned(cfg, progress=False, n_pt_tasks=N_PT, n_ft_tasks=N_FT)
    assert not (tmp_path / "data" / "bio_dataset.zip").exists()
    with pytest.raises(Exception, match="sha256"):
        cfg.write_text(f"url: {url}\nsha256: nothex\n")
        fetch_pinned(cfg, progress=False)
