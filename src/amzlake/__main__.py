"""`python -m amzlake` runs the command line."""

from amzlake.entry import main

main()
