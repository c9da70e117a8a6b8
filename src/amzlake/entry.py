"""The `amzlake` command's entry point: `amzlake query` straight to its light path, the rest to
the Typer app (amzlake.cli). Typer and rich take longer to import than DuckDB does; a query that
reads nothing of the lake should start as fast as DuckDB alone."""

from __future__ import annotations

import sys

_HELP = {"--help", "-h"}


def main() -> None:
    """Run the command line."""
    argv = sys.argv[1:]
    if argv[:1] == ["query"] and not _HELP & set(argv[1:]) and len(argv) > 1:
        from amzlake.query_cli import main as query_main

        query_main(argv[1:])
        return
    from amzlake.cli import main as cli_main

    cli_main()
