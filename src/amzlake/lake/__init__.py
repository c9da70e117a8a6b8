"""The curated lake: Iceberg layout, writer, maintenance and the DuckDB query layer.

Import the modules themselves (amzlake.lake.writer, amzlake.lake.query, ...): this package imports
nothing, so a query that never opens the catalog never pays for pyiceberg.
"""
