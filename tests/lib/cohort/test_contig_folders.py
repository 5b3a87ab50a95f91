"""Issue 21, item 4: a contig the VCF specification allows (``chrUn/evil``) names a safe cohort folder,
every existing folder keeps its name, and a marker can name such a contig."""

import pytest

from genolake_assets.lib.cohort.markers import Marker, parse_marker
from genolake_assets.lib.cohort.state import contig_folder_name, parse_folder, partition_folder
from genolake_assets.lib.lake.identifiers import require_safe_key


@pytest.mark.parametrize("contig", ["chrUn/evil", "a/../../b", "tab\there", "x\ny", "/", "chr1/"])
def test_a_contig_with_a_slash_or_control_character_gets_a_safe_folder(contig):
    folder = partition_folder(contig, 3, 2)
    assert require_safe_key(folder.rstrip("/")) and folder.count("/") == 4
    assert not {".", ".."} & set(folder.split("/"))
    assert parse_folder(folder)[1:] == (3, 2)


def test_path_safe_names_and_existing_encodings_keep_their_folders():
    assert contig_folder_name("chr22") == "chr22" and contig_folder_name("GL000220.1") == "GL000220.1"
    # the encoding lakes already hold for GRCh38's HLA contigs
    assert contig_folder_name("HLA-A*01:01:01:01").startswith("HLA-A_01_01_01_01-")


def test_a_marker_may_name_any_vcf_contig_without_a_colon():
    assert parse_marker("chrUn/evil:100") == Marker("chrUn/evil", 100)
    assert parse_marker("chrUn/evil:100:a:g") == Marker("chrUn/evil", 100, "A", "G")
    assert parse_marker("chr22:5") == Marker("chr22", 5)
    for bad in ("chr22:0", "chr22", ":5", "chr22:5:A"):
        with pytest.raises(ValueError):
            parse_marker(bad)
