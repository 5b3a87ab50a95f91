#!/bin/bash
# Bootstrap action of genolake's EMR clusters (EmrHailConverter, hail_install="bootstrap"; EmrSparkCohortEngine). EMR runs it on
# every node before Spark starts. It installs the Python packages spark/vcf_to_parquet.py and spark/cohort_update.py import and links
# Hail's jar to a fixed path that the step's spark-submit passes with --jars. Running it again changes
# nothing: pip keeps packages that are already installed and `ln -sfn` replaces the link.
#
# It uses python3.11 because Hail 0.2.139 needs Python >= 3.10. EMR 7.x ships Python 3.9 as python3, with
# 3.11 installed beside it; the step points Spark at it with spark.pyspark.python.
# A custom AMI (hail_install="custom_ami") must provide the same packages and the same link.
set -euo pipefail

PYTHON=/usr/bin/python3.11
HAIL_JAR_LINK=/opt/genolake/hail-all-spark.jar
# Exact pins: the versions the orchestrator is tested with (hail needs numpy 2 and pins pyspark <3.6).
# The cluster's own Spark (on the PYTHONPATH spark-submit builds) shadows the pyspark wheel hail pulls in.
PACKAGES=(
  "hail==0.2.139"
  "dagster-pipes==1.13.27"
  "pyarrow==26.0.1"
  "numpy==2.4.6"
  "boto3==1.44.5"
  # the Parquet writer's fallback when rows arrive unsorted (it re-sorts with DuckDB, which spills to disk)
  "duckdb==2.0.0"
)

if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
  sudo dnf install -y python3.11-pip
fi
# Install for root's python3.11, as Spark runs as another user. Newer pips refuse a system install without
# this variable; older ones ignore it.
sudo env PIP_BREAK_SYSTEM_PACKAGES=1 "$PYTHON" -m pip install --quiet --no-cache-dir --disable-pip-version-check \
  "${PACKAGES[@]}"

hail_dir=$(cd /tmp && "$PYTHON" -c 'import hail, os; print(os.path.dirname(hail.__file__))')
sudo mkdir -p "$(dirname "$HAIL_JAR_LINK")"
sudo ln -sfn "$hail_dir/backend/hail-all-spark.jar" "$HAIL_JAR_LINK"
test -s "$HAIL_JAR_LINK"
echo "genolake bootstrap: ${PACKAGES[*]} installed for $PYTHON; Hail jar at $HAIL_JAR_LINK"
