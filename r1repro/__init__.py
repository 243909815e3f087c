"""r1repro: the DeepSeek-R1 recipe, stage by stage, on top of TRL."""

__version__ = "0.1.0"
