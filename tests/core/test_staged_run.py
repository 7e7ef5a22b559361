"""Run folders in object storage (`vava.core.staged_run`): the sync rules, the lease and the commands that take
a run-folder URL, on fsspec's in-memory file system (tests/e2e/test_object_storage.py does it against a real S3
server)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFile

from tests.helpers import cli, single_line
from vava.core.errors import VavaError
from vava.core.location import RemotePath
from vava.core.staged_run import LEASE_NAME, STAGING_ENV, StagedRun, publish, shown, staged, staging_folder
from vava.stages.train.loop import check_out_names

TINY = ["--quiet", "--set", "model.conv_channels=8", "--set", "model.fc_channels=8", "--set",
        "data.frames_per_video=6", "--set", "data.batch_pairs=2", "--set", "checkpoint_every=2"]
MEMORY = fsspec.filesystem("memory")


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RemotePath:
    """A fresh run URL in memory; this machine's staging folder is in tmp_path."""
    monkeypatch.setenv(STAGING_ENV, str(tmp_path / "machine-a"))
    return RemotePath(f"memory://bucket-{uuid.uuid4().hex[:8]}/runs/demo")


def remote_files(url: RemotePath) -> dict[str, bytes]:
    prefix = f"/{url.key}/"
    return {name[len(prefix):]: MEMORY.cat_file(name) for name in MEMORY.find(f"/{url.key}")}


def other_machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str = "machine-b") -> None:
    monkeypatch.setenv(STAGING_ENV, str(tmp_path / name))


def test_the_staging_folder_is_named_by_the_url(url: RemotePath, tmp_path: Path) -> None:
    folder = staging_folder(url)
    assert folder.parent.parent == tmp_path / "machine-a" and folder.name == "demo"  # reports call the run "demo"
    assert staging_folder(RemotePath(f"{url}2")).parent != folder.parent


def test_what_one_machine_pushes_another_pulls_byte_for_byte_without_hidden_files(
        url: RemotePath, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = StagedRun(url)
    (run.local / "checkpoints").mkdir()
    (run.local / "checkpoints" / "last.pt").write_bytes(b"weights")
    (run.local / "train_log.csv").write_text("step,loss\n1,0.5\n")
    (run.local / ".vava.lock").write_text("")
    (run.local / ".eval-embeddings.h5").write_bytes(b"scratch")
    run.push()
    assert remote_files(url) == {"checkpoints/last.pt": b"weights", "train_log.csv": b"step,loss\n1,0.5\n"}

    other_machine(monkeypatch, tmp_path)
    copy = StagedRun(url)
    copy.pull()
    assert copy.local != run.local
    assert (copy.local / "checkpoints" / "last.pt").read_bytes() == b"weights"
    assert sorted(p.name for p in copy.local.iterdir()) == [".vava-sync.json", ".vava-sync.lock", "checkpoints",
                                                             "train_log.csv"]


def test_a_sync_moves_only_what_changed_on_either_side(url: RemotePath, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    a = StagedRun(url)
    for name in ("kept.txt", "changed-there.txt", "changed-here.txt", "deleted-there.txt", "deleted-here.txt",
                 "cleaned-here.txt"):
        (a.local / name).write_text("v1")
    a.push()
    # another machine changes and deletes files in the URL
    other_machine(monkeypatch, tmp_path)
    b = StagedRun(url)
    b.pull()
    (b.local / "changed-there.txt").write_text("v2 from b")
    (b.local / "deleted-there.txt").unlink()
    (b.local / "new-there.txt").write_text("new")
    b.push()
    # meanwhile this machine changed a file, not yet uploaded (an upload that failed, say), and a cache cleaner
    # removed another; a file it kept was deleted in the URL after it changed it here
    (a.local / "changed-here.txt").write_text("v2 from a")
    (a.local / "cleaned-here.txt").unlink()
    MEMORY.rm_file(f"/{url.key}/kept.txt")
    (a.local / "kept.txt").touch()
    pushed = MEMORY.info(f"/{url.key}/changed-here.txt")["created"]

    a.pull()  # the next command on this machine
    assert {p.name: p.read_text() for p in a.local.glob("*.txt")} == {
        "kept.txt": "v1", "changed-there.txt": "v2 from b", "changed-here.txt": "v2 from a", "new-there.txt": "new",
        "deleted-here.txt": "v1", "cleaned-here.txt": "v1"}  # the cleaned file is downloaded again
    assert MEMORY.info(f"/{url.key}/changed-here.txt")["created"] == pushed  # a pull writes nothing there
    (a.local / "deleted-here.txt").unlink()  # the command deletes a file (a sweep moving a stale run, say)
    a.push()
    assert remote_files(url) == {"kept.txt": b"v1", "changed-there.txt": b"v2 from b", "cleaned-here.txt": b"v1",
                                 "changed-here.txt": b"v2 from a", "new-there.txt": b"new"}


def test_a_file_that_went_missing_here_is_never_deleted_from_the_url(url: RemotePath) -> None:
    run = StagedRun(url)
    (run.local / "run.json").write_text("{}")
    run.push()
    (run.local / "run.json").unlink()  # between two commands: a cache cleaner, say
    with staged(url, "vava embed", writes=True) as local:
        assert (local / "run.json").read_text() == "{}"  # downloaded again by the pull
        (local / "run.json").unlink()
        StagedRun(url).push()  # a push of another object knows nothing of this command's pull: deletes nothing
        assert remote_files(url)["run.json"] == b"{}"
    assert "run.json" not in remote_files(url)  # this command deleted it: its push deletes it there


def test_a_deletion_cut_short_is_finished_by_the_next_push(url: RemotePath, monkeypatch: pytest.MonkeyPatch) -> None:
    run = StagedRun(url)
    (run.local / "old.txt").write_text("old")
    run.push()
    (run.local / "old.txt").unlink()
    rm = type(MEMORY).rm_file
    monkeypatch.setattr(type(MEMORY), "rm_file", lambda fs, path: (_ for _ in ()).throw(ConnectionError("down")))
    with pytest.raises(VavaError, match="cannot delete old.txt"):
        run.push()
    monkeypatch.setattr(type(MEMORY), "rm_file", rm)
    later = StagedRun(url)
    later.pull()  # not downloaded again: the manifest marks it deleted
    assert not (later.local / "old.txt").exists()
    later.push()
    assert "old.txt" not in remote_files(url)


def test_a_pull_limited_to_wanted_files_leaves_the_others(url: RemotePath) -> None:
    for name, data in (("report.json", b"{}"), ("embeddings.h5", b"big")):
        MEMORY.pipe_file(f"/{url.key}/{name}", data)
    run = StagedRun(url)
    run.pull(wanted="report.json".__eq__)
    assert sorted(p.name for p in run.local.iterdir() if not p.name.startswith(".")) == ["report.json"]
    run.push()  # what was not pulled is not deleted
    assert sorted(remote_files(url)) == ["embeddings.h5", "report.json"]


def test_object_names_that_are_not_plain_paths_are_refused_or_never_copied(url: RemotePath) -> None:
    MEMORY.pipe_file(f"/{url.key}/.hidden/../../escape", b"x")  # a part starting with ".": never synced
    run = StagedRun(url)
    run.pull()
    assert not list(run.local.rglob("escape")) and not (run.local.parent / "escape").exists()
    MEMORY.pipe_file(f"/{url.key}/sub\\..\\x", b"x")
    with pytest.raises(VavaError) as caught:
        run.pull()
    assert str(caught.value) == f"{url}: holds an object named 'sub\\\\..\\\\x', which is not a plain file " \
                                "path; remove it"


def test_the_lease_admits_one_writer_and_names_the_other(url: RemotePath, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    with staged(url, "vava train", writes=True):
        holder = json.loads(MEMORY.cat_file(f"/{url.key}/{LEASE_NAME}"))
        assert holder["host"] == socket.gethostname() and holder["pid"] == os.getpid()
        other_machine(monkeypatch, tmp_path)
        second = StagedRun(url)
        with pytest.raises(VavaError) as caught:
            second.take_lease("vava embed")
        assert str(caught.value) == (
            f"{url}: vava train (process {os.getpid()} on {socket.gethostname()}, since {holder['since']}) is "
            f"writing into this run; wait for it to end, or delete {url}/{LEASE_NAME} if that process is gone")
        second.release_lease()  # not its lease: left alone
        assert MEMORY.exists(f"/{url.key}/{LEASE_NAME}")
    assert not MEMORY.exists(f"/{url.key}/{LEASE_NAME}")
    second.take_lease("vava embed")
    left = MEMORY.cat_file(f"/{url.key}/{LEASE_NAME}")
    StagedRun(url).take_lease("vava evaluate")  # one this process could not remove (the storage was down)
    assert MEMORY.cat_file(f"/{url.key}/{LEASE_NAME}") != left


def test_a_lease_left_by_a_dead_process_of_this_host_is_taken_over(url: RemotePath) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    left = {"host": socket.gethostname(), "pid": int(dead.stdout), "command": "vava train", "since": "earlier"}
    MEMORY.pipe_file(f"/{url.key}/{LEASE_NAME}", json.dumps(left).encode())
    run = StagedRun(url)
    run.take_lease("vava train")
    assert json.loads(MEMORY.cat_file(f"/{url.key}/{LEASE_NAME}"))["pid"] == os.getpid()
    MEMORY.pipe_file(f"/{url.key}/{LEASE_NAME}", json.dumps({**left, "host": "elsewhere"}).encode())
    with pytest.raises(VavaError, match=r"process \d+ on elsewhere, since earlier\) is writing"):
        StagedRun(url).take_lease("vava train")  # another host's process may still run: never broken


def test_staged_uploads_what_was_done_when_the_command_fails_and_names_the_url(url: RemotePath) -> None:
    with pytest.raises(VavaError) as caught, staged(url, "vava train", writes=True) as local:
        (local / "checkpoints").mkdir()
        (local / "checkpoints" / "step_2.pt").write_bytes(b"done")
        publish(local / "checkpoints")
        assert sorted(remote_files(url)) == [LEASE_NAME, "checkpoints/step_2.pt"]
        (local / "train_log.csv").write_text("step\n2\n")
        raise VavaError(f"{local / 'checkpoints' / 'step_4.pt'}: disk full")
    assert str(caught.value) == f"{url}/checkpoints/step_4.pt: disk full"
    assert sorted(remote_files(url)) == ["checkpoints/step_2.pt", "train_log.csv"]  # the lease is gone
    with staged(url, "vava evaluate", writes=False) as local:  # a reader takes no lease and uploads nothing
        (local / "scratch.txt").write_text("x")
        assert not MEMORY.exists(f"/{url.key}/{LEASE_NAME}")
    assert sorted(remote_files(url)) == ["checkpoints/step_2.pt", "train_log.csv"]


def test_a_local_folder_is_used_as_it_is(tmp_path: Path) -> None:
    with staged(tmp_path, "vava train", writes=True) as local:
        assert local == tmp_path
        assert shown(local / "report.md", local, tmp_path) == str(tmp_path / "report.md")
    url = RemotePath("s3://b/run")
    assert shown(Path("/stage/run/report.md"), Path("/stage/run"), url) == "s3://b/run/report.md"
    assert shown(Path("/stage/run"), Path("/stage/run"), url) == "s3://b/run"


def test_train_embed_evaluate_and_resume_elsewhere_through_a_run_url(toy_features: Path, url: RemotePath,
                                                                     tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    trained = cli("train", "--features", toy_features, "--out", url, "--steps", "4", *TINY)
    assert trained.exit_code == 0 and trained.stdout == f"{url}\n", trained.output
    assert sorted(remote_files(url)) == ["checkpoints/last.pt", "checkpoints/step_0000002.pt",
                                         "checkpoints/step_0000004.pt", "config.yaml", "run.json", "train_log.csv"]
    embedded = cli("embed", "--run", url, "--quiet")
    assert embedded.exit_code == 0 and embedded.stdout == f"{url}/embeddings.h5\n", embedded.output
    evaluated = cli("evaluate", "--run", url, "--no-plots", "--no-time-reference")
    assert evaluated.exit_code == 0, evaluated.output
    assert f"report: {url}/report.md and report.json\n" in evaluated.stdout
    assert "\ndemo " in evaluated.stdout  # the run is called by the URL's name
    compared = cli("evaluate", "--compare", url)
    assert compared.exit_code == 0 and "| demo |" in compared.stdout, compared.output

    other_machine(monkeypatch, tmp_path)  # another machine continues the run from the URL
    again = cli("train", "--features", toy_features, "--out", url, "--steps", "4", *TINY)
    assert again.exit_code == 1
    assert single_line(again.stderr) == f"Error: --out: {url} already holds a run; pass --resume to continue it " \
                                        "or pick a new folder"
    resumed = cli("train", "--features", toy_features, "--out", url, "--steps", "6", "--resume", *TINY)
    assert resumed.exit_code == 0 and "from step 4 to 6" in resumed.stderr, resumed.output
    log = MEMORY.cat_file(f"/{url.key}/train_log.csv").decode().splitlines()
    assert [row.split(",")[0] for row in log] == ["step", "4", "6"]
    assert not MEMORY.exists(f"/{url.key}/{LEASE_NAME}")


def test_local_only_paths_refuse_urls(toy_features: Path) -> None:
    refused = cli("data", "synth", "s3://bucket/data")
    assert refused.exit_code == 2 and "Invalid value for 'OUT_DIR': s3://bucket/data: a local path, please " \
                                      "(object-storage URLs are taken for feature caches and run folders" in refused.stderr
    refused = cli("sweep", "--features", toy_features, "--out", "memory://b/sweep", "--results", "s3://b/r.md")
    assert refused.exit_code == 2 and "'--results': s3://b/r.md: a local path, please" in refused.stderr


def test_a_sweep_into_a_url_is_reused_from_there_on_another_machine(toy_features: Path, url: RemotePath,
                                                                      tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("base: synthetic\nruns:\n  tcn:\n    objective: tcn\n")
    options = ["--features", toy_features, "--plan", plan, "--out", url, "--steps", "2",
               "--set", "model.conv_channels=8", "--set", "model.fc_channels=8"]
    first = cli("sweep", *options)
    assert first.exit_code == 0 and first.stdout.endswith(f"\n{url}/results.md\n"), first.output
    assert {"results.md", "tcn/report.json", "tcn/sweep_time.json"} <= set(remote_files(url))
    other_machine(monkeypatch, tmp_path)
    again = cli("sweep", *options)
    assert again.exit_code == 0 and again.stderr == "[1/1] tcn: report exists, reused\n", again.output


def test_a_push_cut_short_is_taken_up_where_it_stopped(url: RemotePath, monkeypatch: pytest.MonkeyPatch) -> None:
    run = StagedRun(url)
    for name in ("a.txt", "b.txt", "c.txt"):
        (run.local / name).write_text(name)
    put, sent, failing = type(MEMORY).put_file, [], [True]

    def put_twice_then_fail(fs: object, local: str, key: str, **kwargs: object) -> None:
        if failing[0] and len(sent) == 2:
            raise ConnectionResetError("connection lost")
        sent.append(Path(key).name)
        put(fs, local, key, **kwargs)

    monkeypatch.setattr(type(MEMORY), "put_file", put_twice_then_fail)
    with pytest.raises(VavaError, match=rf"^{url}: cannot upload c.txt \(ConnectionResetError: connection lost\)$"):
        run.push()
    failing[0] = False
    StagedRun(url).push()  # a later command reads what the manifest recorded
    assert sent == ["a.txt", "b.txt", "c.txt"]  # c.txt alone the second time
    assert remote_files(url) == {"a.txt": b"a.txt", "b.txt": b"b.txt", "c.txt": b"c.txt"}


def test_files_behind_a_symlink_in_the_staging_folder_are_never_uploaded(url: RemotePath, tmp_path: Path) -> None:
    secret = tmp_path / "elsewhere"
    secret.mkdir()
    (secret / "key.txt").write_text("secret")
    run = StagedRun(url)
    (run.local / "plots").symlink_to(secret)
    (run.local / "report.md").symlink_to(secret / "key.txt")
    (run.local / "train_log.csv").write_text("step\n")
    run.push()
    assert remote_files(url) == {"train_log.csv": b"step\n"}


def test_a_synced_folder_replaced_by_a_symlink_is_not_deleted_from_the_url(url: RemotePath, tmp_path: Path) -> None:
    run = StagedRun(url)
    (run.local / "checkpoints").mkdir()
    (run.local / "checkpoints" / "last.pt").write_bytes(b"weights")
    (run.local / "run.json").write_text("{}")
    run.push()
    elsewhere = tmp_path / "bigger-disk"  # the user moves the checkpoints to another disk and links them
    (run.local / "checkpoints").rename(elsewhere)
    (run.local / "checkpoints").symlink_to(elsewhere)
    (run.local / "run.json").rename(tmp_path / "run.json")
    (run.local / "run.json").symlink_to(tmp_path / "run.json")
    run.push()  # what a writer does even when its command refuses the symlink
    assert sorted(remote_files(url)) == ["checkpoints/last.pt", "run.json"]


def test_a_manifest_naming_files_outside_the_staging_folder_deletes_nothing_there(url: RemotePath,
                                                                                 tmp_path: Path) -> None:
    run = StagedRun(url)
    run.push()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    info = victim.stat()
    manifest = json.loads((run.local / ".vava-sync.json").read_text())
    manifest["files"][os.path.relpath(victim, run.local)] = {"version": "x", "size": info.st_size,
                                                             "mtime_ns": info.st_mtime_ns}
    (run.local / ".vava-sync.json").write_text(json.dumps(manifest))
    StagedRun(url).pull()  # a reader: `vava evaluate --compare URL`
    assert victim.read_text() == "precious"


def test_what_the_staging_folder_or_the_url_cannot_be_is_one_line_not_a_traceback(
        url: RemotePath, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    staging_folder(url).parent.mkdir(parents=True)
    staging_folder(url).write_text("a file")
    with pytest.raises(VavaError, match=r"cannot make its staging folder .* set VAVA_STAGING to a writable folder"):
        StagedRun(url)
    staging_folder(url).unlink()
    run = StagedRun(url)
    (run.local / ".vava-sync.lock").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(VavaError, match=r"\.vava-sync\.lock: cannot lock the staging folder of "):
        run.pull()
    (run.local / ".vava-sync.lock").unlink()
    MEMORY.pipe_file(f"/{url.key}/plots/p.png", b"a folder")
    MEMORY.store[f"/{url.key}/plots"] = MemoryFile(MEMORY, f"/{url.key}/plots", b"and a file")  # as S3 allows
    with pytest.raises(VavaError, match=r"holds an object 'plots' and objects below plots/: a file cannot also"):
        run.pull()
    MEMORY.rm(f"/{url.key}", recursive=True)
    MEMORY.pipe_file(f"/{url.key}", b"the URL itself is a file")
    with pytest.raises(VavaError, match=r"is a file, not a run folder"):
        StagedRun(url).pull()
    with pytest.raises(VavaError, match=r"is a file, not a run folder"), staged(url, "vava train", writes=True):
        pass
    assert MEMORY.cat_file(f"/{url.key}") == b"the URL itself is a file"


def test_folder_markers_in_the_url_are_no_files(url: RemotePath) -> None:
    MEMORY.pipe_file(f"/{url.key}/checkpoints/last.pt", b"weights")
    entry = {"type": "file", "size": 0, "ETag": '"d41d8cd98f00b204e9800998ecf8427e"'}
    listed = {f"{url.key}/": {**entry, "name": f"{url.key}/"},  # what S3 lists for console-made folders
              f"{url.key}/checkpoints/": {**entry, "name": f"{url.key}/checkpoints/"},
              f"{url.key}/checkpoints/last.pt": {**entry, "size": 7, "ETag": '"1"'}}
    run = StagedRun(url)
    run.url.__dict__["fs"] = type("Listing", (), {"find": lambda self, *a, **k: listed,
                                                  "get_file": MEMORY.get_file})()
    run.pull()
    assert sorted(str(p.relative_to(run.local)) for p in run.local.rglob("*") if not p.name.startswith(".")) \
        == ["checkpoints", "checkpoints/last.pt"]


def test_a_lease_from_another_process_space_of_this_host_name_is_never_broken(url: RemotePath) -> None:
    left = {"host": socket.gethostname(), "pid": 2 ** 22 + 1, "pids": "another boot or container",
            "command": "vava train", "since": "earlier"}  # a process number this host never gave
    MEMORY.pipe_file(f"/{url.key}/{LEASE_NAME}", json.dumps(left).encode())
    with pytest.raises(VavaError, match=r"since earlier\) is writing into this run"):
        StagedRun(url).take_lease("vava train")


def test_of_two_processes_finding_one_stale_lease_one_replaces_it(url: RemotePath, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    stale = json.dumps({"host": socket.gethostname(), "pid": dead_pid(), "command": "vava train",
                        "since": "earlier"}).encode()
    MEMORY.pipe_file(f"/{url.key}/{LEASE_NAME}", stale)
    late = StagedRun(url)  # read the stale lease, then was slow to act on it
    with staged(url, "vava train", writes=True):
        assert json.loads(MEMORY.cat_file(f"/{url.key}/{LEASE_NAME}"))["pid"] == os.getpid()
        assert not late._claim_takeover(stale)  # it must not delete the new lease
        other_machine(monkeypatch, tmp_path)
        with pytest.raises(VavaError, match="vava train .* is writing into this run"):
            StagedRun(url).take_lease("vava embed")
    assert not [name for name in MEMORY.find(f"/{url.key}") if ".vava.lease" in name]  # the mark goes with it


def test_leases_of_folders_above_and_below_exclude_each_other(url: RemotePath) -> None:
    child = RemotePath(f"{url}/supervised")
    with staged(url, "vava sweep", writes=True, check=lambda names: None):
        with pytest.raises(VavaError) as caught:
            StagedRun(child).take_lease("vava embed")
        assert f"{child}: vava sweep (process {os.getpid()}" in str(caught.value)
        assert str(caught.value).endswith(f"is writing into {url}; wait for it to end, or delete {url}/{LEASE_NAME} "
                                          "if that process is gone")
    assert not MEMORY.exists(f"/{child.key}/{LEASE_NAME}")  # the refused writer removed its own
    with staged(child, "vava embed", writes=True):
        with pytest.raises(VavaError, match=f"is writing into {child};"):
            StagedRun(url).take_lease("vava sweep")


def test_a_url_holding_no_run_is_refused_before_anything_is_downloaded(url: RemotePath) -> None:
    bucket = RemotePath(f"memory://{url.key.split('/')[0]}")
    MEMORY.pipe_file(f"/{url.key}/run.json", b"{}")
    MEMORY.pipe_file(f"/{bucket.key}/big/data.bin", b"x" * 1000)
    result = cli("evaluate", "--run", bucket)
    assert result.exit_code == 1 and single_line(result.stderr) == (
        f"Error: {bucket}: holds no run folder (none of checkpoints, config.yaml, embeddings.h5, report.json, "
        "run.json, sweep_key.json at its top); name a run's folder")
    assert not staging_folder(bucket).exists()
    with pytest.raises(VavaError, match=rf"^out: {bucket} is not empty and is not a run folder \(no run.json\)"):
        with staged(bucket, "vava train", writes=True, check=lambda names: check_out_names(bucket, names, False)):
            pass


def test_urls_and_object_names_that_no_file_system_keeps_alike_are_refused(url: RemotePath) -> None:
    for bad in ("s3://b/runs//y", "s3://b/runs/../x", "s3://b/./x"):
        with pytest.raises(VavaError, match=r": a URL with an empty, '\.' or '\.\.' part; write the path without it$"):
            RemotePath(bad)
    MEMORY.pipe_file(f"/{url.key}/run.json", b"{}")
    MEMORY.pipe_file(f"/{url.key}/{'x' * 300}", b"")
    with pytest.raises(VavaError, match=r"holds an object named 'x{300}', which is not a plain file path"):
        StagedRun(url).pull()


def test_a_missing_driver_is_one_line_naming_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STAGING_ENV, str(tmp_path))
    result = cli("train", "--features", tmp_path, "--out", "nodriverfs://b/runs/x")
    assert result.exit_code == 1 and single_line(result.stderr).startswith("Error: nodriverfs://b/runs/x: ")
    assert "Traceback" not in result.output


def dead_pid() -> int:
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout)
