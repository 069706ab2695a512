"""`python -m vidlab` (and `torchrun -m vidlab`) run the CLI."""

from vidlab.cli import main

if __name__ == "__main__":
    main()
