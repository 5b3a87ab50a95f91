"""Run genolake's converter on one gVCF, alone in this process so its peak RSS is its own."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from genolake_assets.lib.vcf.convert import convert_vcf  # noqa: E402

vcf_path, out_dir = sys.argv[1], sys.argv[2]
report = convert_vcf(vcf_path, out_dir)
print(report)
