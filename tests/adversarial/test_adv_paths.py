"""Path-safety probes: a run never deletes, replaces or follows what it did not write.

``--out`` must be new, empty or an rnncore run (its ``.rnncore-run`` marker);
a fresh run into an earlier run, or beside other files, needs ``--force``;
symbolic links in place of a run's names are refused, never followed; a
resumed run writes beside its checkpoint only inside a run directory, and
reads text only from ``--data``.
"""

from __future__ import annotations

import os
import shutil

import pytest

from rnncore.checkpoint.atomic import write_directory
from rnncore.errors import ArgumentError
from rnncore.train import claim_run_dir, is_run_dir
from rnncore.train.rundir import RUN_MARKER

from .conftest import TINY, run_cli


def tree(root):
    """Every file under ``root``: relative path -> bytes (links as their target)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            path = os.path.join(dirpath, name)
            key = os.path.relpath(path, root)
            if os.path.islink(path):
                out[key] = "->" + os.readlink(path)
            else:
                with open(path, "rb") as f:
                    out[key] = f.read()
    return out


def train(*args, cwd):
    return run_cli("train", "--data", "text.txt", *TINY, "--max-steps", "2", *args, cwd=cwd)


@pytest.fixture
def home(tmp_path, tiny_run):
    shutil.copy(tiny_run.parent / "text.txt", tmp_path / "text.txt")
    return tmp_path


def one_line_error(done, *words):
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("rnncore: error:") and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr
    for w in words:
        assert w in done.stderr, done.stderr


def test_a_folder_of_documents_is_refused_and_left_untouched(home):
    docs = home / "mydocs"
    (docs / "latest").mkdir(parents=True)
    (docs / "best").mkdir()
    (docs / "latest" / "notes.txt").write_text("my notes")
    (docs / "best" / "thesis.tex").write_text("\\chapter{One}")
    (docs / "metrics.csv").write_text("mine,not,yours\n")
    before = tree(home)
    one_line_error(train("--out", "mydocs", cwd=home), "--out", "not an rnncore run")
    assert tree(home) == before
    # --force writes beside other files, never over a name the run would write
    one_line_error(train("--out", "mydocs", "--force", cwd=home), "metrics.csv")
    assert tree(home) == before
    (docs / "metrics.csv").unlink()
    shutil.rmtree(docs / "latest")
    shutil.rmtree(docs / "best")
    (docs / "thesis.tex").write_text("kept")
    done = train("--out", "mydocs", "--force", cwd=home)
    assert done.returncode == 0, done.stderr
    assert (docs / "thesis.tex").read_text() == "kept" and (docs / "latest").is_dir()


@pytest.mark.parametrize("name", ["latest", "latest.old", "latest.tmp-mine"])
def test_a_checkpoint_holding_other_files_is_never_replaced(tmp_path, name):
    """Neither the target nor the directories a write removes (its .old, a
    leftover temp directory) may hold files that are not a checkpoint's."""
    (tmp_path / name).mkdir()
    (tmp_path / name / "notes.txt").write_text("mine")
    if name != "latest":
        (tmp_path / "latest").mkdir()
    before = tree(tmp_path)
    with pytest.raises(ArgumentError, match=r"notes\.txt"):
        write_directory(tmp_path / "latest", {"state.json": b"{}"})
    assert tree(tmp_path) == before


@pytest.mark.parametrize("name", ["latest", "best", "metrics.csv", "latest.old"])
def test_a_symlink_in_a_run_is_refused_and_not_followed(home, name):
    done = train("--out", "run", cwd=home)
    assert done.returncode == 0, done.stderr
    elsewhere = home / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious.txt").write_text("keep me")
    link = home / "run" / name
    if link.is_dir():
        shutil.rmtree(link)
    elif link.exists():
        link.unlink()
    link.symlink_to(elsewhere)
    before = tree(home)
    again = run_cli("train", "--init-from", "run", "--data", "text.txt", "--max-steps", "4",
                    "--no-progress", cwd=home)  # fmt: skip
    one_line_error(again, "symbolic link", name)
    assert tree(home) == before  # the target, and everything else, untouched
    # and the checkpoint writer refuses it on its own, for a caller of the Python API
    if name in ("latest", "latest.old"):
        with pytest.raises(ArgumentError, match="symbolic link"):
            write_directory(home / "run" / "latest", {"state.json": b"{}"})
        assert tree(home) == before


def test_training_again_into_a_run_needs_force(home):
    assert train("--out", "run", cwd=home).returncode == 0
    before = tree(home)
    one_line_error(train("--out", "run", cwd=home), "earlier run", "--force")
    assert tree(home) == before
    done = train("--out", "run", "--force", cwd=home)
    assert done.returncode == 0, done.stderr


def test_a_bare_checkpoint_does_not_make_its_parent_a_run(home):
    assert train("--out", "run", cwd=home).returncode == 0
    shutil.copytree(home / "run" / "latest", home / "some" / "dir" / "ckpt")
    (home / "some" / "dir" / "paper.pdf").write_bytes(b"%PDF")
    before = tree(home)
    args = ("train", "--init-from", "some/dir/ckpt", "--data", "text.txt", "--max-steps", "4")
    one_line_error(run_cli(*args, "--no-progress", cwd=home), "--init-from", "--out")
    assert tree(home) == before
    done = run_cli(*args, "--no-progress", "--out", "cont", cwd=home)
    assert done.returncode == 0, done.stderr
    assert (home / "cont" / "latest").is_dir()
    assert tree(home / "some") == {k[5:]: v for k, v in before.items() if k.startswith("some/")}


def test_resume_reads_text_only_from_the_command_line(home):
    assert train("--out", "run", cwd=home).returncode == 0
    before = tree(home)
    done = run_cli("train", "--init-from", "run", "--max-steps", "4", "--no-progress", cwd=home)
    one_line_error(done, "--data", "text.txt")
    assert tree(home) == before
    again = run_cli("train", "--init-from", "run", "--data", "text.txt", "--max-steps", "4",
                    "--no-progress", cwd=home)  # fmt: skip
    assert again.returncode == 0, again.stderr


def test_claim_run_dir_rules(tmp_path):
    new = tmp_path / "new"
    assert claim_run_dir(new, continuing=False, force=False) == new
    assert (new / RUN_MARKER).is_file() and is_run_dir(new)
    claim_run_dir(new, continuing=False, force=False)  # marker only: still empty
    (new / "metrics.csv").write_text("")
    with pytest.raises(ArgumentError, match="earlier run"):
        claim_run_dir(new, continuing=False, force=False)
    claim_run_dir(new, continuing=True, force=False)
    (new / "inspect").mkdir()  # another tool's files beside a run are kept
    claim_run_dir(new, continuing=True, force=False)
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(ArgumentError, match="not a directory"):
        claim_run_dir(afile, continuing=True, force=True, what="out_dir")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(ArgumentError, match="symbolic link"):
        claim_run_dir(dangling, continuing=False, force=True)
    assert not (tmp_path / "nowhere").exists()


def test_a_full_disk_leaves_no_metrics_tmp(tmp_path, monkeypatch):
    import csv
    import errno

    from rnncore.train.metrics import MetricsLog

    (tmp_path / "metrics.csv").write_text("step\n")

    class Full:
        def writerows(self, rows):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(csv, "writer", lambda f: Full())
    with pytest.raises(OSError, match="No space"):
        MetricsLog(tmp_path / "metrics.csv", resume_step=3)
    assert sorted(os.listdir(tmp_path)) == ["metrics.csv"]
    assert (tmp_path / "metrics.csv").read_text() == "step\n"  # the old file is kept


def test_inspect_never_replaces_files_it_did_not_write(tiny_run, tmp_path):
    (tmp_path / "text.txt").write_text((tiny_run.parent / "text.txt").read_text())
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "index.html").write_text("<p>my page</p>")
    before = tree(tmp_path)
    args = ("inspect", "--checkpoint", tiny_run, "--file", "text.txt", "--out", "mine")
    one_line_error(run_cli(*args, cwd=tmp_path), "index.html")
    one_line_error(run_cli(*args, "--force", cwd=tmp_path), "index.html")
    (mine / "index.html").unlink()
    (mine / "notes.txt").write_text("kept")
    before = tree(tmp_path)
    one_line_error(run_cli(*args, cwd=tmp_path), "--force")
    assert tree(tmp_path) == before
    done = run_cli(*args, "--force", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (mine / "notes.txt").read_text() == "kept" and (mine / "index.html").is_file()
    again = run_cli(*args, cwd=tmp_path)  # an earlier page is replaced without --force
    assert again.returncode == 0, again.stderr


def test_resuming_into_another_earlier_run_needs_force(home):
    assert train("--out", "A", cwd=home).returncode == 0
    assert train("--out", "B", "--model", "gru", cwd=home).returncode == 0
    shutil.copytree(home / "A" / "latest", home / "bare")
    before = tree(home)
    for source in ("A", "bare"):
        args = ("train", "--init-from", source, "--data", "text.txt", "--max-steps", "4")
        one_line_error(run_cli(*args, "--out", "B", "--no-progress", cwd=home), "--force")
        assert tree(home) == before  # B, the other run, untouched
    args = ("train", "--init-from", "A", "--data", "text.txt", "--max-steps", "4", "--out")
    done = run_cli(*args, "B", "--force", "--no-progress", cwd=home)
    assert done.returncode == 0, done.stderr
    again = run_cli(*args, "A", "--no-progress", cwd=home)  # its own run: no --force
    assert again.returncode == 0, again.stderr
