"""A sequencer writing run folders over time, from the bundled real data, for trying the automation on one machine.

Writes Illumina-style run folders (``YYMMDD_<instrument>_<run>_<flowcell>``) under
``<share>/<output path>``: ``RunInfo.xml`` first, then each sample's gVCF and BAM
(the way secondary analysis on the instrument drops them, written in chunks so a copier can catch
a file half-written), and ``CopyComplete.txt`` last, as the instrument does when a run is done.
"""

from __future__ import annotations

import itertools
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

_CHUNK = 256 << 10


@dataclass(frozen=True)
class SimulatedRun:
    folder: Path
    files: list[Path]


def _write_slowly(source: Path, target: Path, pause: float) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as reader, open(target, "wb") as writer:
        while chunk := reader.read(_CHUNK):
            writer.write(chunk)
            writer.flush()
            if pause:
                time.sleep(pause)


def _run_info(run_id: str, instrument: str, run_number: int, flowcell: str) -> str:
    return (f'<?xml version="1.0"?>\n<RunInfo Version="2">\n  <Run Id="{run_id}" Number="{run_number}">\n'
            f"    <Flowcell>{flowcell}</Flowcell>\n    <Instrument>{instrument}</Instrument>\n  </Run>\n</RunInfo>\n")


def simulate_runs(share: Path, output_path: str, samples: list[Path], *, runs: int, per_run: int,
                  instrument: str = "M00123", day: date | None = None, date_format: str = "%y%m%d",
                  first_run_number: int = 1, interval: float = 0.0, chunk_pause: float = 0.0,
                  echo: Callable[[str], None] = print) -> Iterator[SimulatedRun]:
    """Write ``runs`` run folders of ``per_run`` files each (cycling through ``samples``), ``interval``
    seconds apart; yields each run once its ``CopyComplete.txt`` is written."""
    day = day or date.today()
    root = share / output_path.strip("/")
    files = itertools.cycle(samples)
    for index in range(runs):
        number = first_run_number + index
        flowcell = f"000000000-G{number:04d}"
        run_id = f"{day.strftime(date_format)}_{instrument}_{number:04d}_{flowcell}"
        folder = root / run_id
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "RunInfo.xml").write_text(_run_info(run_id, instrument, number, flowcell))
        written = []
        for _ in range(per_run):
            source = next(files)
            target = folder / "Analysis" / source.name
            _write_slowly(source, target, chunk_pause)
            for sidecar in (Path(f"{source}.tbi"), Path(f"{source}.bai")):
                if sidecar.exists():
                    shutil.copyfile(sidecar, Path(f"{target}{sidecar.suffix}"))
            written.append(target)
        (folder / "CopyComplete.txt").write_text("")
        echo(f"run {run_id}: {len(written)} files ({', '.join(p.name for p in written)})")
        yield SimulatedRun(folder=folder, files=written)
        if interval and index + 1 < runs:
            time.sleep(interval)
