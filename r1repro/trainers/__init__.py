"""The trainers several stages share and what they need: grpo (TRL's GRPOTrainer: r1zero, reasoning_rl,
all_scenario_rl) with dynamic_sampling (DAPO's), sft (SFT on reasoning traces: cold_start, rejection_sft,
distill), their helpers (training: load, train with resume, save; callbacks), the stage-module contract
(inputs: StageInputs) and the traces the trace-SFT stages train on (trace_steps: prompts -> sampling in a
child -> selection; traces: R1's filters). Which stage runs which trainer is the stage table's business
(r1repro/stages/__init__.py); nothing here imports it. ("Engine" in this project means a sampler:
r1repro/generation/.)"""
