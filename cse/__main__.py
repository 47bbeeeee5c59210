"""`python -m cse` runs the `cse` command."""

from cse.cli import main

main()
