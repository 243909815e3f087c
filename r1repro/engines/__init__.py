"""What the stages are built from: the training engines several stages share (grpo: GRPOTrainer;
sft: SFT on reasoning traces), their helpers (training, callbacks), trace sampling and selection
(trace_steps, traces) and the end-of-stage eval (evaluate). Which stage runs which engine is the
stage table's business (r1repro/stages/__init__.py)."""
