"""Sample identifiers and object keys that reach paths and SQL."""

import pytest

from genolake_assets.lib.lake.identifiers import (
    InvalidIdentifierError,
    is_safe_sample_id,
    pseudonymous_id,
    require_safe_key,
    require_safe_sample_id,
    sample_id_for,
    sample_id_from_file,
)


@pytest.mark.parametrize("name", ["../x", "a'; drop table", "C1046::HG02024", "x/../../etc/passwd", "..", "a b",
                                  "ünïcode", "-leading-dash", "a" * 300])
def test_any_sample_name_maps_to_a_safe_distinct_id(name):
    sample_id = sample_id_for(name)
    assert is_safe_sample_id(sample_id)
    assert "/" not in sample_id and "'" not in sample_id and ".." not in sample_id
    assert sample_id_for(name) == sample_id  # deterministic


@pytest.mark.parametrize("name", ["../x", "a'; drop table", "C1046::HG02024", "HG00187", "a" * 300])
def test_pseudonymous_ids_of_any_name_are_safe_and_hide_it(name):
    sample_id = pseudonymous_id(name, b"k" * 32)
    assert is_safe_sample_id(sample_id) and len(sample_id) == 25 and name not in sample_id


def test_safe_names_are_kept_and_lookalikes_stay_distinct():
    assert sample_id_for("HG00187") == "HG00187"
    assert sample_id_for("C1046::HG02024") != sample_id_for("C1046__HG02024")
    assert sample_id_for("a b") != sample_id_for("a_b")


def test_a_second_file_with_the_same_name_gets_another_id():
    first = sample_id_for("NA12878")
    second = sample_id_from_file("NA12878", "landing/run2.vcf.gz")
    assert second != first and is_safe_sample_id(second)


@pytest.mark.parametrize("bad", ["../x", "/abs", "a//b", "a/./b", "a\\b", "a/b c", ""])
def test_unsafe_keys_are_rejected(bad):
    with pytest.raises(InvalidIdentifierError):
        require_safe_key(bad)


@pytest.mark.parametrize("bad", ["../x", "a'b", "", "x" * 101, "a/b"])
def test_unsafe_sample_ids_are_rejected(bad):
    with pytest.raises(InvalidIdentifierError):
        require_safe_sample_id(bad)


# -- a trailing newline is not part of a safe identifier (issue 21 item 9) --------------------------------

@pytest.mark.parametrize("value", ["HG00187\n", "p" + "0" * 24 + "\n", "a\n"])
def test_a_trailing_newline_is_not_a_safe_sample_id(value):
    assert not is_safe_sample_id(value)
    with pytest.raises(InvalidIdentifierError):
        require_safe_sample_id(value)


@pytest.mark.parametrize("key", ["variants/sample_id=HG00187\n", "landing/a.vcf\n", "cohort/contig=chr1\n/bin=0"])
def test_a_trailing_newline_makes_a_key_unsafe(key):
    with pytest.raises(InvalidIdentifierError):
        require_safe_key(key)


def test_a_hex_key_with_a_trailing_newline_is_still_read_as_text_not_as_hex_by_the_pattern():
    from genolake_assets.lib.lake import identifiers

    assert identifiers._HEX.match("00ff\n") is None and identifiers._HEX.match("00ff")
