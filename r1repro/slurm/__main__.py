import sys

from r1repro.slurm.cli import main

if __name__ == "__main__":
    sys.exit(main())
