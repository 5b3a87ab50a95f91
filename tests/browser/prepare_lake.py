"""Run as a program (its own process, so the code location reads this lake's settings): land real
gVCFs into a fresh local lake and register their sample partitions in the Dagster instance, the way
the landing sensor does, without running anything."""

import os
import sys
from pathlib import Path

DATA_VCF = Path(__file__).resolve().parents[1] / "data" / "vcf"
SAMPLES = ("HG00187.hg38.g.vcf.gz", "HG00190.hg38.g.vcf.gz", "NA12249.hg38.g.vcf.gz")


def main(home: Path) -> None:
    from genolake_assets.ui_server import DAGSTER_YAML

    dagster_home = home / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text(DAGSTER_YAML)
    os.environ.update(GENOLAKE_PROFILE="local", GENOLAKE_HOME=str(home), DAGSTER_HOME=str(dagster_home))

    import dagster as dg

    from genolake_assets.definitions import resources
    from genolake_assets.sensors.landing import landing_sensor

    lake = resources["lake"]
    for name in SAMPLES:
        lake.store().upload(DATA_VCF / name, f"landing/{name}")
    with dg.DagsterInstance.get() as instance:
        result = landing_sensor(dg.build_sensor_context(instance=instance, resources={"lake": lake}))
        for request in result.dynamic_partitions_requests:
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        print(",".join(instance.get_dynamic_partitions("samples")))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
