"""Slurm support: the cluster plan, the per-node launcher and the pipeline submitter.

The sbatch scripts in slurm/ call `python -m r1repro.slurm ...`; users call `r1repro slurm ...`.
"""

from r1repro.slurm.cli import main

__all__ = ["main"]
