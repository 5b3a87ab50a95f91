"""Run the BAM compression job from a checkout: python containers/bam-compress/entrypoint.py --work-order …"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout's genolake_assets first
from genolake_assets.programs.bam_compress import main  # noqa: E402

sys.exit(main())
