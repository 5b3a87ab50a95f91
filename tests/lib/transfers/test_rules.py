"""Transfer rules: DataSync include filters for dated run folders, ad-hoc manifests, configuration."""

from __future__ import annotations

import re
from datetime import date

import pytest

from genolake_assets.lib.transfers.rules import (
    CONFIG_ENV_VAR,
    FILTER_VALUE_MAX_CHARS,
    MAX_MANIFEST_PATHS,
    ManifestError,
    SequencerPath,
    TransferConfig,
    TransferConfigError,
    dated_include_patterns,
    include_filter,
    matches,
    parse_manifest,
)

TASK_ARN = "arn:aws:datasync:eu-west-1:123456789012:task/task-0123456789abcdef0"

MISEQ = SequencerPath("miseq", "/MiSeq/Output")
ISEQ = SequencerPath("iseq", "/iSeq/Output", instrument="FS10000123")
NEXTSEQ2000 = SequencerPath("nextseq2000", "/NextSeq2000/Output", date_format="%Y%m%d", instrument="VH00123")


@pytest.fixture
def config() -> TransferConfig:
    return TransferConfig(sequencer_paths=(MISEQ, ISEQ, NEXTSEQ2000), transfer_days=3, task_arn=TASK_ARN)


# -- dated include patterns ------------------------------------------------------------------


def test_window_crosses_year_boundary_in_both_date_formats(config):
    patterns = dated_include_patterns(config, date(2024, 1, 1))
    assert patterns == [
        "/MiSeq/Output/240101_*", "/MiSeq/Output/231231_*", "/MiSeq/Output/231230_*",
        "/iSeq/Output/240101_*", "/iSeq/Output/231231_*", "/iSeq/Output/231230_*",
        "/NextSeq2000/Output/20240101_*", "/NextSeq2000/Output/20231231_*", "/NextSeq2000/Output/20231230_*",
    ]


def test_window_crosses_month_boundary_including_leap_day():
    config = TransferConfig(sequencer_paths=(MISEQ,), transfer_days=4)
    assert dated_include_patterns(config, date(2024, 3, 2)) == [
        "/MiSeq/Output/240302_*", "/MiSeq/Output/240301_*", "/MiSeq/Output/240229_*", "/MiSeq/Output/240228_*"]


def test_one_day_window_and_share_root_as_output_folder():
    config = TransferConfig(sequencer_paths=(SequencerPath("root", "/"),), transfer_days=1)
    assert dated_include_patterns(config, date(2023, 7, 9)) == ["/230709_*"]


def test_no_sequencers_means_no_patterns_and_no_filter():
    empty = TransferConfig(sequencer_paths=())
    assert dated_include_patterns(empty, date(2024, 1, 1)) == []
    with pytest.raises(ValueError, match="transfer everything"):
        include_filter([])


def test_dated_patterns_select_todays_runs_only(config):
    patterns = dated_include_patterns(config, date(2024, 1, 1))
    assert matches("/MiSeq/Output/231230_M00123_0042_000000000-ABCDE/RTAComplete.txt", patterns)
    assert matches("/NextSeq2000/Output/20231231_VH00123_12_AAAW3KLM5/Data/Intensities/BaseCalls/L001/a.cbcl",
                   patterns)
    assert not matches("/MiSeq/Output/231229_M00123_0041_000000000-ABCDE/RTAComplete.txt", patterns)
    # a YYMMDD pattern must not pick up a YYYYMMDD folder, nor the other way round
    assert not matches("/NextSeq2000/Output/231231_VH00123_12_X/a", patterns)
    assert not matches("/MiSeq/Output/20240101_M00123_1_X/a", patterns)


# -- include_filter ---------------------------------------------------------------------------


def test_include_filter_is_one_simple_pattern_rule(config):
    patterns = dated_include_patterns(config, date(2024, 1, 1))
    assert include_filter(patterns) == [{"FilterType": "SIMPLE_PATTERN", "Value": "|".join(patterns)}]
    assert include_filter(["/a"]) == [{"FilterType": "SIMPLE_PATTERN", "Value": "/a"}]


def test_include_filter_length_limit():
    exactly = ["/" + "a" * (FILTER_VALUE_MAX_CHARS - 1)]
    assert len(include_filter(exactly)[0]["Value"]) == FILTER_VALUE_MAX_CHARS
    with pytest.raises(ValueError, match="102400"):
        include_filter(["/" + "a" * 60_000, "/" + "b" * 60_000])


@pytest.mark.parametrize("bad", ["relative/path", "/a|/b", "/a\x00b", ""])
def test_include_filter_rejects_patterns_that_would_change_meaning(bad):
    with pytest.raises(ValueError):
        include_filter([bad])


# -- matches ----------------------------------------------------------------------------------


def test_folder_include_covers_itself_and_every_descendant():
    patterns = ["/MiSeq/Output/230101_M0_1_A"]
    assert matches("/MiSeq/Output/230101_M0_1_A", patterns)
    assert matches("/MiSeq/Output/230101_M0_1_A/SampleSheet.csv", patterns)
    assert matches("/MiSeq/Output/230101_M0_1_A/Data/Intensities/BaseCalls/L001/C1.1/s_1_1101.bcl", patterns)
    assert matches("/MiSeq/Output/230101_M0_1_A/x", ["/MiSeq/Output/230101_M0_1_A/"])  # "/dir/" == "/dir"


def test_no_false_prefix_matches():
    assert not matches("/MiSeq/Output2/230101_M0_1_A/a.fastq.gz", ["/MiSeq/Output"])
    assert not matches("/MiSeq/Output_old/a", ["/MiSeq/Output"])
    assert not matches("/MiSeq/Out", ["/MiSeq/Output"])
    assert matches("/MiSeq/Output/a", ["/MiSeq/Output"])


def test_wildcard_run_folder():
    patterns = ["/MiSeq/Output/230101_*"]
    assert matches("/MiSeq/Output/230101_M00123_0001_000000000-A1B2C/Alignment_1/x.bam", patterns)
    assert matches("/MiSeq/Output/230101_", patterns)
    assert not matches("/MiSeq/Output/230102_M00123_0002_A/x", patterns)
    assert not matches("/MiSeq/Output/X230101_M0/x", patterns)
    assert matches("/MiSeq/Output1/a", ["/MiSeq/Output*"])  # DataSync: "/movies_folder*" matches /movies_folder1


def test_outside_roots_and_case_sensitivity():
    patterns = ["/MiSeq/Output/230101_*"]
    assert not matches("/NextSeq/Output/230101_N/x", patterns)
    assert not matches("/miseq/output/230101_M/x", patterns)  # DataSync filters are case sensitive
    assert not matches("/etc/passwd", patterns)
    assert not matches("/MiSeq/Output/230101_M/x", [])
    with pytest.raises(ValueError):
        matches("MiSeq/Output/230101_M/x", patterns)
    with pytest.raises(ValueError, match="must start with '/'"):
        matches("/MiSeq/Output/230101_M/x", [""])


def test_regex_characters_in_paths_are_literal():
    assert matches("/Runs (old)/a+b[1].txt", ["/Runs (old)/a+b[1].txt"])
    assert not matches("/Runs (old)/aab1.txt", ["/Runs (old)/a+b[1].txt"])
    assert not matches("/MiSeqXOutput/a", ["/MiSeq.Output"])


# -- parse_manifest ---------------------------------------------------------------------------


GOOD_MANIFEST = """\
# re-run of last month's runs, requested by the lab
/MiSeq/Output/230101_M00123_0001_000000000-A1B2C

   /iSeq/Output/230102_FS10000123_1_BPC12345-1234/*
/NextSeq2000/Output/20230103_VH00123_5_AAAW3KLM5/
/NextSeq2000/Output/20230103_VH00123_5_AAAW3KLM5/SampleSheet.csv\r
/MiSeq/Output/230101_M00123_0001_000000000-A1B2C
    # an indented comment
"""


def test_good_manifest_with_comments_blank_lines_trailing_forms_and_duplicates(config):
    patterns = parse_manifest(GOOD_MANIFEST, config, "adhoc/rerun.txt")
    assert patterns == [
        "/MiSeq/Output/230101_M00123_0001_000000000-A1B2C",
        "/iSeq/Output/230102_FS10000123_1_BPC12345-1234",
        "/NextSeq2000/Output/20230103_VH00123_5_AAAW3KLM5",
        "/NextSeq2000/Output/20230103_VH00123_5_AAAW3KLM5/SampleSheet.csv",
    ]
    assert matches("/iSeq/Output/230102_FS10000123_1_BPC12345-1234/Data/x.bcl", patterns)
    assert include_filter(patterns)[0]["Value"].count("|") == 3


def _error(text: str, config: TransferConfig) -> ManifestError:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text, config, "adhoc/bad.txt")
    return caught.value


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("/MiSeq/Output/230101_A\n/HiSeq/Output/230101_B\n", 2, "not below a configured sequencer path"),
        ("# x\n/MiSeq/Output2/230101_A\n", 2, "not below"),  # a sibling that shares a prefix
        ("/MiSeq/Output\n", 1, "whole sequencer output folder"),
        ("/MiSeq/Output/*\n", 1, "whole sequencer output folder"),
        ("\n\n/MiSeq/Output/../../etc/passwd\n", 3, "'..'"),
        ("/MiSeq/Output/./230101_A\n", 1, "'.'"),
        ("/MiSeq/Output//230101_A\n", 1, "empty"),
        ("MiSeq/Output/230101_A\n", 1, "must start with '/'"),
        ("/MiSeq/Output/230101_A\n/MiSeq/Output/2301\t01_B\n", 2, "U+0009 at column 19"),
        ("/MiSeq/Output/230101_A\x1b[2K\n", 1, "U+001B"),
        ("/MiSeq/Output/230101_A\x0b/etc\n", 1, "U+000B"),  # splitlines() would have split here
        ("/MiSeq/Output/230101_A\u2028/etc\n", 1, "U+2028"),
        ("/MiSeq/Output/230101_\u202eA\n", 1, "U+202E"),  # bidi override hides the real order
        ("/MiSeq/Output/230101_A|/\n", 1, "'|'"),
        ("/MiSeq/Output/2301*\n", 1, "'*'"),
        ("/MiSeq/Output/230101_A\\\n", 1, "'\\\\'"),
    ],
)
def test_bad_manifest_names_the_line(config, text, line, problem):
    error = _error(text, config)
    assert error.line == line
    assert error.source == "adhoc/bad.txt"
    assert problem in error.problem
    assert str(error).startswith(f"manifest adhoc/bad.txt, line {line}: ")
    assert isinstance(error, ValueError)


def test_too_many_paths(config):
    lines = [f"/MiSeq/Output/230101_M0_{n}_A" for n in range(MAX_MANIFEST_PATHS)]
    assert len(parse_manifest("\n".join(lines), config, "m")) == MAX_MANIFEST_PATHS
    error = _error("# header\n" + "\n".join(lines + ["/MiSeq/Output/230101_M0_extra_A"]), config)
    assert error.line == MAX_MANIFEST_PATHS + 2
    assert f"more than {MAX_MANIFEST_PATHS} paths" in error.problem


def test_paths_exceeding_the_filter_limit(config):
    long_paths = [f"/MiSeq/Output/{n:03d}_" + "x" * 200 for n in range(600)]
    error = _error("\n".join(long_paths), config)
    assert "102400" in error.problem
    assert 400 < error.line < 600


def test_empty_manifest_and_no_configured_roots(config):
    error = _error("# nothing\n\n", config)
    assert error.line is None and str(error) == "manifest adhoc/bad.txt: no paths (only blank lines or comments)"
    error = _error("/MiSeq/Output/230101_A\n", TransferConfig(sequencer_paths=()))
    assert error.line == 1 and "none configured" in error.problem


# -- TransferConfig ---------------------------------------------------------------------------


def test_defaults_and_normalised_path():
    config = TransferConfig(sequencer_paths=[SequencerPath("miseq", "/MiSeq/Output/")])
    assert config.sequencer_paths == (SequencerPath("miseq", "/MiSeq/Output"),)
    assert (config.transfer_days, config.task_arn, config.source_root) == (3, None, None)
    assert (config.destination_prefix, config.adhoc_prefix) == ("landing/sequencers/", "adhoc/")
    assert (config.execution_timeout_minutes, config.quiet_seconds) == (360, 60)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "../miseq", "path": "/MiSeq"}, "sequencer name"),
        ({"name": "mi..seq", "path": "/MiSeq"}, "sequencer name"),
        ({"name": "mi seq", "path": "/MiSeq"}, "sequencer name"),
        ({"name": "", "path": "/MiSeq"}, "sequencer name"),
        ({"name": "miseq", "path": "MiSeq/Output"}, "must start with '/'"),
        ({"name": "miseq", "path": "/MiSeq/../etc"}, "'..'"),
        ({"name": "miseq", "path": "/MiSeq/Out*"}, "'*'"),
        ({"name": "miseq", "path": "/MiSeq\nOutput"}, "U+000A"),
        ({"name": "miseq", "path": "/MiSeq", "date_format": "%d%m%y"}, "date_format"),
        ({"name": "miseq", "path": "/MiSeq", "instrument": "M0 1"}, "instrument"),
    ],
)
def test_sequencer_path_validation(kwargs, message):
    with pytest.raises(TransferConfigError, match=re.escape(message)):
        SequencerPath(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"transfer_days": 0}, "transfer_days must be an integer >= 1"),
        ({"transfer_days": True}, "transfer_days"),
        ({"transfer_days": "3"}, "transfer_days"),
        ({"execution_timeout_minutes": 0}, "execution_timeout_minutes"),
        ({"quiet_seconds": -1}, "quiet_seconds"),
        ({"task_arn": "arn:aws:s3:::bucket"}, "not a DataSync task ARN"),
        ({"source_root": "  "}, "source_root"),
        ({"destination_prefix": "landing/sequencers"}, "must end with '/'"),
        ({"destination_prefix": "../landing/"}, "destination_prefix"),
        ({"adhoc_prefix": "/adhoc/"}, "adhoc_prefix"),
        ({"sequencer_paths": (MISEQ, SequencerPath("miseq", "/Other"))}, "sequencer names must be unique"),
        ({"sequencer_paths": (MISEQ, SequencerPath("miseq2", "/MiSeq/Output/"))}, "sequencer paths must be unique"),
        ({"sequencer_paths": ("/MiSeq/Output",)}, "SequencerPath"),
        ({"transfer_days": 20_000}, "DataSync allows 102400"),
    ],
)
def test_transfer_config_validation(kwargs, message):
    kwargs = {"sequencer_paths": (MISEQ,)} | kwargs
    with pytest.raises(TransferConfigError, match=re.escape(message)):
        TransferConfig(**kwargs)


def test_moto_style_task_arn_is_accepted():
    arn = "arn:aws:datasync:us-east-1:111222333444:task/task-00000000000000001"
    assert TransferConfig(sequencer_paths=(), task_arn=arn).task_arn == arn


TOML = """\
transfer_days = 2
task_arn = "arn:aws:datasync:eu-west-1:123456789012:task/task-0123456789abcdef0"
source_root = "share"
quiet_seconds = 0

[[sequencer_paths]]
name = "miseq"
path = "/MiSeq/Output"
instrument = "M00123"

[[sequencer_paths]]
name = "nextseq2000"
path = "/NextSeq2000/Output"
date_format = "%Y%m%d"
"""


def test_from_toml(tmp_path):
    path = tmp_path / "transfer.toml"
    path.write_text(TOML)
    config = TransferConfig.from_toml(path)
    assert config.sequencer_paths == (
        SequencerPath("miseq", "/MiSeq/Output", instrument="M00123"),
        SequencerPath("nextseq2000", "/NextSeq2000/Output", date_format="%Y%m%d"),
    )
    assert config.transfer_days == 2 and config.quiet_seconds == 0 and config.task_arn.endswith("abcdef0")
    assert config.source_root == str((tmp_path / "share").resolve())  # relative to the TOML file
    assert config.execution_timeout_minutes == 360
    assert dated_include_patterns(config, date(2024, 1, 1)) == [
        "/MiSeq/Output/240101_*", "/MiSeq/Output/231231_*",
        "/NextSeq2000/Output/20240101_*", "/NextSeq2000/Output/20231231_*"]


def test_from_toml_under_a_transfer_table_with_absolute_source_root(tmp_path):
    share = tmp_path / "elsewhere"
    path = tmp_path / "genolake.toml"
    path.write_text(f'[transfer]\nsource_root = "{share}"\n[[transfer.sequencer_paths]]\nname = "iseq"\npath = "/iSeq"\n')
    config = TransferConfig.from_toml(path)
    assert config.source_root == str(share) and config.sequencer_paths == (SequencerPath("iseq", "/iSeq"),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("transfer_day = 3\n", "unknown setting"),
        ("transfer_days = 0\n", "transfer_days"),
        ("transfer_days = \n", "transfer.toml"),  # not TOML
        ('sequencer_paths = "/MiSeq"\n', "array of tables"),
        ('[[sequencer_paths]]\nname = "m"\n', "entry 1"),
        ('[[sequencer_paths]]\nname = "m"\npath = "/M"\ncolour = "red"\n', "entry 1"),
        ('[[sequencer_paths]]\nname = "m"\npath = "/M/../x"\n', "'..'"),
    ],
)
def test_from_toml_errors_name_the_file(tmp_path, text, message):
    path = tmp_path / "transfer.toml"
    path.write_text(text)
    with pytest.raises(TransferConfigError) as caught:
        TransferConfig.from_toml(path)
    assert str(path) in str(caught.value) and message in str(caught.value)


def test_from_toml_missing_file(tmp_path):
    with pytest.raises(TransferConfigError, match="does not exist"):
        TransferConfig.from_toml(tmp_path / "absent.toml")


def test_from_env_without_variable_is_empty(monkeypatch):
    monkeypatch.delenv(CONFIG_ENV_VAR, raising=False)
    assert TransferConfig.from_env() == TransferConfig(sequencer_paths=())
    assert TransferConfig.from_env({CONFIG_ENV_VAR: "  "}).sequencer_paths == ()


def test_from_env_reads_the_named_file(monkeypatch, tmp_path):
    path = tmp_path / "transfer.toml"
    path.write_text(TOML)
    monkeypatch.setenv(CONFIG_ENV_VAR, str(path))
    assert TransferConfig.from_env() == TransferConfig.from_toml(path)
    assert TransferConfig.from_env({CONFIG_ENV_VAR: str(path)}).transfer_days == 2
    monkeypatch.setenv(CONFIG_ENV_VAR, str(tmp_path / "missing.toml"))
    with pytest.raises(TransferConfigError, match="missing.toml does not exist"):
        TransferConfig.from_env()
