"""`genolake demo --data DIR`: a user's own folder of VCFs, landed and ingested end to end."""

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from genolake_assets.demo import vcfs_to_land

GVCFS = Path(__file__).resolve().parent / "data" / "vcf"


def test_every_vcf_suffix_is_found_in_sub_folders(tmp_path):
    (tmp_path / "run1" / "deep").mkdir(parents=True)
    for name in ("run1/a.vcf", "run1/deep/b.vcf.gz", "c.VCF.BGZ", "notes.txt", "run1/a.vcf.gz.tbi"):
        (tmp_path / name).write_text("x")

    found = [path.relative_to(tmp_path).as_posix() for path in vcfs_to_land(tmp_path)]

    assert found == ["c.VCF.BGZ", "run1/a.vcf", "run1/deep/b.vcf.gz"]


def test_a_folder_without_vcfs_or_two_files_of_one_name_are_refused_by_name(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "readme.txt").write_text("no VCF here")
    with pytest.raises(FileNotFoundError, match=r"no VCFs \(\*\.vcf, \*\.vcf\.gz, \*\.vcf\.bgz\) under"):
        vcfs_to_land(tmp_path)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        vcfs_to_land(tmp_path / "missing")
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "s1.vcf.gz").write_text("x")
    with pytest.raises(ValueError, match=r"s1\.vcf\.gz"):
        vcfs_to_land(tmp_path)


def run_genolake(*args: str, home: Path) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("GENOLAKE_", "DAGSTER_"))}
    return subprocess.run([sys.executable, "-m", "genolake_assets.cli", *args], capture_output=True, text=True,
                          env=environment, cwd=home.parent, timeout=600)


def test_an_empty_folder_is_refused_before_fresh_removes_anything(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "keep.txt").write_text("an earlier lake")
    (tmp_path / "empty").mkdir()

    run = run_genolake("demo", "--home", str(home), "--data", str(tmp_path / "empty"), "--fresh", home=home)

    assert run.returncode == 2
    assert "no VCFs" in run.stderr and str(tmp_path / "empty") in run.stderr and "Traceback" not in run.stderr
    assert (home / "keep.txt").read_text() == "an earlier lake"


@pytest.mark.slow
def test_a_users_folder_of_compressed_vcfs_is_ingested(tmp_path):
    data = tmp_path / "my vcfs"
    (data / "batch2").mkdir(parents=True)
    shutil.copyfile(GVCFS / "HG00187.hg38.g.vcf.gz", data / "HG00187.vcf.gz")
    shutil.copyfile(GVCFS / "HG00190.hg38.g.vcf.gz", data / "batch2" / "HG00190.vcf.bgz")
    with gzip.open(GVCFS / "HG01377.hg38.g.vcf.gz", "rb") as packed:
        (data / "batch2" / "HG01377.vcf").write_bytes(packed.read())
    home = tmp_path / "home"

    run = run_genolake("demo", "--home", str(home), "--data", str(data), home=tmp_path)

    assert run.returncode == 0, run.stderr[-3000:]
    assert "landed 3 VCFs" in run.stdout
    assert "samples:           3 (3 converted, 0 quarantined)" in run.stdout
    for sample in ("HG00187", "HG00190", "HG01377"):
        assert (home / "lake" / "variants" / f"sample_id={sample}").is_dir()


# -- --fresh deletes only a genolake home, never through a link (issue 21 item 7) ----------------------------

def _one_vcf_folder(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copyfile(GVCFS / "HG00187.hg38.g.vcf.gz", data / "HG00187.vcf.gz")
    return data


def test_fresh_refuses_a_folder_that_is_not_a_genolake_home(tmp_path):
    home = tmp_path / "thesis"
    (home / "chapters").mkdir(parents=True)
    (home / "chapters" / "one.tex").write_text("years of work")

    run = run_genolake("demo", "--home", str(home), "--data", str(_one_vcf_folder(tmp_path)), "--fresh", home=home)

    assert run.returncode == 2, run.stderr[-2000:]
    assert "not a genolake home" in run.stderr and str(home) in run.stderr and "Traceback" not in run.stderr
    assert (home / "chapters" / "one.tex").read_text() == "years of work"
    assert sorted(p.name for p in home.iterdir()) == ["chapters"]


def test_fresh_never_follows_a_home_that_is_a_link(tmp_path):
    from genolake_assets.demo import HOME_MARKER

    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / HOME_MARKER).write_text("even a marked home is not reached through a link")
    (target / "victim.txt").write_text("keep me")
    link = tmp_path / "home-link"
    link.symlink_to(target)

    run = run_genolake("demo", "--home", str(link), "--data", str(_one_vcf_folder(tmp_path)), "--fresh", home=link)

    assert run.returncode == 2 and "symbolic link" in run.stderr and "Traceback" not in run.stderr
    assert (target / "victim.txt").read_text() == "keep me" and link.is_symlink()


def test_fresh_empties_a_genolake_home_without_following_links_inside_it(tmp_path):
    from genolake_assets.demo import HOME_MARKER, NotAGenolakeHome, check_fresh_home, home_kind, prepare_home

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("not the demo's")
    home = prepare_home(tmp_path / "home", fresh=False)  # a home the demo creates is marked
    assert (home / HOME_MARKER).is_file() and home_kind(home) == "marked"
    (home / "lake").mkdir()
    (home / "lake" / "linked").symlink_to(outside)
    (home / "lake" / "linked-file").symlink_to(outside / "precious.txt")

    assert prepare_home(home, fresh=True) == home
    assert sorted(p.name for p in home.iterdir()) == [HOME_MARKER]  # emptied and marked again
    assert (outside / "precious.txt").read_text() == "not the demo's"

    earlier = tmp_path / "earlier"  # a home made before the marker existed (`make demo`'s .genolake)
    (earlier / "lake" / "landing").mkdir(parents=True)
    (earlier / "dagster_home").mkdir()
    (earlier / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    check_fresh_home(earlier)
    (earlier / "notes.txt").write_text("someone else's file")
    with pytest.raises(NotAGenolakeHome, match="not a genolake home"):
        check_fresh_home(earlier)
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    with pytest.raises(NotAGenolakeHome, match="not a folder"):
        check_fresh_home(not_a_folder)
    users = tmp_path / "users"
    (users / "lake").mkdir(parents=True)
    (users / "mine.txt").write_text("x")
    assert prepare_home(users, fresh=False) == users.resolve()  # used, but never marked as deletable
    assert not (users / HOME_MARKER).exists()
