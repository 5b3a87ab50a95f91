"""Programs that run outside the Dagster code location: in a Batch container, or as a local subprocess."""
