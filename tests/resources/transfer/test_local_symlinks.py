"""The local copier never follows a link out of (or inside) the share, nor reads a FIFO (issue 21 item 6)."""

import json
import logging
import os
from pathlib import Path

from tests.resources.transfer.test_transfer import MISEQ_RUN, _age, _lake_files, make_local, share  # noqa: F401


def test_local_skips_symbolic_links_and_special_files_and_says_so(make_local, share, tmp_path, caplog):
    host = tmp_path / "host"
    (host / "etc").mkdir(parents=True)
    (host / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    run = share / MISEQ_RUN.lstrip("/")
    os.symlink(host / "etc" / "passwd", run / "passwd.vcf.gz")  # a file link out of the share
    os.symlink(host / "etc", run / "Alignment_2")  # a folder link out of the share
    os.symlink(run / "RunInfo.xml", run / "RunInfo-copy.xml")  # a link inside the share: not followed either
    os.mkfifo(run / "pipe.vcf")  # reading it would block the transfer (and its lock) for ever
    for path in (run / "passwd.vcf.gz", run / "Alignment_2", run / "RunInfo-copy.xml"):
        os.utime(path, (0, 0), follow_symlinks=False)
    _age(run / "pipe.vcf", 3600)

    local = make_local()
    with caplog.at_level(logging.WARNING):
        execution = local.start([MISEQ_RUN], reason="links in the share")

    assert execution.status == "SUCCESS", execution.error
    landed = _lake_files(local)
    assert not [p for p in landed if "passwd" in p or "Alignment_2" in p or "copy" in p or "pipe" in p], landed
    assert execution.files_transferred == 3  # the run's three real files
    assert not list(Path(local.lake_root).rglob("passwd*"))
    record = json.loads((Path(local.state_dir) / f"{execution.execution_id}.json").read_text())
    skipped = {entry["path"]: entry["reason"] for entry in record["skipped"]}
    assert set(skipped) == {f"{MISEQ_RUN}/passwd.vcf.gz", f"{MISEQ_RUN}/Alignment_2", f"{MISEQ_RUN}/RunInfo-copy.xml",
                            f"{MISEQ_RUN}/pipe.vcf"}
    assert "not followed" in skipped[f"{MISEQ_RUN}/passwd.vcf.gz"] and "regular file" in skipped[f"{MISEQ_RUN}/pipe.vcf"]
    assert f"{MISEQ_RUN}/passwd.vcf.gz" in caplog.text and "not followed" in caplog.text
    assert local.describe(execution.execution_id) == execution  # the record still reads back


def test_a_file_swapped_for_a_link_after_the_walk_is_not_read(make_local, share, tmp_path, monkeypatch):
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret\n")
    relative = f"{MISEQ_RUN}/RunInfo.xml"
    source = share / relative.lstrip("/")
    from genolake_assets.resources.transfer import local as local_transfer

    real_copy = local_transfer._copy_file

    def swap_then_copy(source_path: Path, target: Path) -> str:
        if source_path == source:  # the walk saw a regular file; an attacker replaces it by a link
            source_path.unlink()
            os.symlink(secret, source_path)
        return real_copy(source_path, target)

    monkeypatch.setattr(local_transfer, "_copy_file", swap_then_copy)
    execution = make_local().start([MISEQ_RUN], reason="race")
    assert relative not in execution.files and relative in (execution.error or "")
    assert not [p for p in Path(make_local().lake_root).rglob("RunInfo.xml")]
