"""`python -m tracelang` runs the command line."""

from tracelang.cli import main

main()
