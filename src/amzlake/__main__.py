"""`python -m amzlake` runs the command line."""

from amzlake.cli import main

main()
