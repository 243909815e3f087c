"""DAPO's dynamic sampling (Yu et al. 2025, verl's `filter_groups`) on TRL's GRPOTrainer.

A GRPO group whose completions all get the same reward has zero advantage: it costs a forward/backward
and teaches nothing. With `dynamic_sampling: {metric: reward, max_generation_batches: N}` in a GRPO recipe,
groups whose metric (the weighted total `reward`, or one reward's name) has zero std are dropped and more
prompts are generated, up to N generation batches, until the generation batch TRL expects is full of groups
with variance. When N is reached first, the batch is completed with dropped groups (zero advantage: what
plain GRPO would have trained on) and the shortfall is logged.

The config half (DynamicSamplingArgs, checks) is light; the trainer half imports TRL on use.

Extension point: GRPOTrainer._generate_and_score_completions(inputs) -> dict, which _prepare_inputs calls
once per generation batch, and _calculate_rewards (its gathered rewards_per_func, stashed, no copy of the
computation). tests/test_dynamic_sampling.py pins both against the installed TRL.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import yaml
from datasets import IterableDataset

from r1repro.config import ConfigError

KEYS = ("metric", "max_generation_batches")


@dataclass(frozen=True)
class DynamicSampling:
    metric: str = "reward"
    max_generation_batches: int = 4


def parse_spec(value) -> DynamicSampling | None:
    """The recipe's `dynamic_sampling` value -> DynamicSampling (None: off). One-line ConfigErrors."""
    if value is None or value is False:
        return None
    if isinstance(value, DynamicSampling):
        return value
    if not isinstance(value, dict):
        raise ConfigError("field 'dynamic_sampling' must be a mapping like {metric: reward, max_generation_batches: "
                          f"4}} (or null to turn it off), got {value!r}", "dynamic_sampling")
    for key in value:
        if key not in KEYS:
            close = difflib.get_close_matches(str(key), KEYS, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else f"; its keys are {', '.join(KEYS)}"
            raise ConfigError(f"field 'dynamic_sampling': unknown key '{key}'{hint}", "dynamic_sampling")
    metric = value.get("metric", "reward")
    if not isinstance(metric, str) or not metric.strip():
        raise ConfigError("field 'dynamic_sampling': metric must be 'reward' (the weighted total) or the name of one "
                          f"of the recipe's rewards, got {metric!r}", "dynamic_sampling")
    n = value.get("max_generation_batches", DynamicSampling.max_generation_batches)
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ConfigError("field 'dynamic_sampling': max_generation_batches must be an integer >= 2 (1 would never "
                          f"draw again; remove the field for plain GRPO), got {n!r}", "dynamic_sampling")
    return DynamicSampling(metric.strip(), n)


@dataclass
class DynamicSamplingArgs:
    dynamic_sampling: dict | None = field(
        default=None,
        metadata={"help": "DAPO dynamic sampling: {metric: reward | <reward name>, max_generation_batches: N}; "
                          "groups whose metric has zero std are dropped and more prompts drawn (up to N "
                          "generation batches a step). null: plain GRPO."})

    def __post_init__(self):
        if isinstance(self.dynamic_sampling, str):  # the command line's YAML, if argparse left it a string
            self.dynamic_sampling = yaml.safe_load(self.dynamic_sampling)
        spec = parse_spec(self.dynamic_sampling)
        self.dynamic_sampling = None if spec is None else {"metric": spec.metric,
                                                            "max_generation_batches": spec.max_generation_batches}


def reward_names(specs) -> list[str]:
    """The log names TRL will give the recipe's rewards (registry.build_rewards: name, or the function of
    `path: file.py:function`; a repeated name gets _2, _3), without importing any reward."""
    if isinstance(specs, (str, dict)):
        specs = [specs]
    names, seen = [], {}
    for spec in specs or []:
        if isinstance(spec, str):
            base = spec.strip()
        elif isinstance(spec, dict) and isinstance(spec.get("name"), str):
            base = spec["name"].strip()
        elif isinstance(spec, dict) and isinstance(spec.get("path"), str):
            base = spec["path"].rsplit(":", 1)[-1].strip()
        else:
            continue
        base = base.rsplit(":", 1)[-1]
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
    return names


def check_metric(spec: DynamicSampling | None, names: list[str]) -> None:
    """ConfigError unless spec.metric is 'reward' or one of the rewards' names."""
    if spec is None or spec.metric == "reward" or spec.metric in names:
        return
    close = difflib.get_close_matches(spec.metric, ["reward", *names], n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ConfigError(f"field 'dynamic_sampling': metric '{spec.metric}' is neither 'reward' nor one of the rewards "
                      f"({', '.join(names)}){hint}", "dynamic_sampling")


def cost_line(spec: DynamicSampling, prompts: int, num_generations: int, max_completion_length: int) -> str:
    """`r1repro check`'s summary: what one generation round may cost with dynamic sampling."""
    completions = prompts * num_generations
    tokens = completions * max_completion_length
    n = spec.max_generation_batches
    return (f"dynamic sampling on {spec.metric}: 1 to {n} generation batches a round = {completions} to "
            f"{completions * n} completions ({prompts} to {prompts * n} prompts), at most {tokens:,} to "
            f"{tokens * n:,} completion tokens; zero-std groups dropped")


# --------------------------------------------------------------------------------------------------
# The trainer half.

# Keys of _generate_and_score_completions' output, by how rows of two generation batches are joined.
# Prompts are left-padded, completions right-padded (TRL's pad() calls in the same function).
LEFT_PADDED = {"prompt_ids": "pad", "prompt_mask": 0}
RIGHT_PADDED = {"completion_ids": "pad", "completion_mask": 0, "old_per_token_logps": 0.0,
                "sampling_per_token_logps": 0.0, "ref_per_token_logps": 0.0, "tool_mask": 1,
                "importance_sampling_ratio": 1.0}
PER_ROW = {"advantages"}
RECOMPUTED = {"num_items_in_batch"}  # the loss-mask token count over all ranks: recomputed for the kept rows
HANDLED_KEYS = set(LEFT_PADDED) | set(RIGHT_PADDED) | PER_ROW | RECOMPUTED
# Multimodal keys: their rows do not line up one per completion (pixel_values is per image patch).
UNSUPPORTED_KEYS = {"pixel_values", "image_grid_thw", "pixel_attention_mask", "spatial_shapes", "image_sizes",
                    "token_type_ids", "mm_token_type_ids", "image_position_ids", "num_images", "num_tiles"}


def trainer_class():
    """GRPOTrainer with dynamic sampling; built on use so that importing this module stays light."""
    import torch
    import torch.nn.functional as F
    from trl import GRPOTrainer
    from trl.trainer.utils import RepeatSampler, nanstd

    def zero_std(values, g):
        """Per group of g consecutive rows: True where the values (NaN: unscored) have zero std."""
        std = nanstd(values.view(-1, g), dim=1)
        return torch.isclose(std, torch.zeros_like(std)) | torch.isnan(std)

    def pad_to(t, length, value, left):
        if t.ndim < 2 or t.size(1) == length:
            return t
        extra = length - t.size(1)
        return F.pad(t, (extra, 0) if left else (0, extra), value=value)

    class DynamicSamplingGRPOTrainer(GRPOTrainer):
        """GRPOTrainer that refills a generation batch with groups whose metric varies (see the module doc)."""

        def __init__(self, *args, dynamic_sampling: DynamicSampling, **kwargs):
            super().__init__(*args, **kwargs)
            self.dynamic_sampling = dynamic_sampling
            check_metric(dynamic_sampling, list(self.reward_func_names))
            self._ds_rewards = None
            self._ds_prompts = None  # iterator over extra generation batches, made on first use
            self._ds_generated_tokens = 0

        def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
            # TRL returns rewards_per_func gathered over every rank (N_global, n_funcs): the keep/drop decision
            # below is made from it, so it is identical on every rank without another collective.
            self._ds_rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
            return self._ds_rewards

        # ---------------------------------------------------------------------------------------------
        def _ds_next_inputs(self) -> list[dict]:
            """This rank's share of one more generation batch, drawn as TRL's train sampler draws (whole
            groups of num_generations, the same global order on every rank), from a sampler of its own: the
            trainer's dataloader drives epochs and checkpoints and is left alone. Its seed moves with the
            global step, so a resumed run does not replay the same extra prompts."""
            size = self.args.generation_batch_size  # global rows of one generation batch
            if self._ds_prompts is None:
                if isinstance(self.train_dataset, IterableDataset):
                    raise ConfigError("field 'dynamic_sampling': needs an indexable training dataset, not a "
                                      "streaming one", "dynamic_sampling")
                self._ds_prompts = self._ds_index_stream(size)
            indices = next(self._ds_prompts)
            local = len(indices) // self.accelerator.num_processes
            mine = indices[self.accelerator.process_index * local:(self.accelerator.process_index + 1) * local]
            return [self.train_dataset[i] for i in mine]

        def _ds_index_stream(self, size):
            epoch = 0
            while True:
                sampler = RepeatSampler(data_source=self.train_dataset, mini_repeat_count=self.num_generations,
                                        batch_size=size // self.num_generations, repeat_count=1,
                                        shuffle=self.shuffle_dataset,
                                        seed=self.args.seed + 1 + self.state.global_step + 7919 * epoch)
                indices = list(sampler)
                for start in range(0, len(indices) - size + 1, size):
                    yield indices[start:start + size]
                epoch += 1

        def _ds_gather(self, out: dict) -> dict:
            """Every rank's rows of one generation batch, in global order (rank 0's first, as TRL lays out
            rewards_per_func), padded to a common length: each rank then holds the same global batch."""
            unsupported = sorted(k for k, v in out.items() if v is not None and k in UNSUPPORTED_KEYS)
            unknown = sorted(k for k, v in out.items() if v is not None and k not in HANDLED_KEYS | UNSUPPORTED_KEYS)
            if unsupported or unknown:
                raise ConfigError(f"field 'dynamic_sampling': TRL's batch holds {', '.join(unsupported + unknown)}, "
                                  "which dynamic sampling cannot join across generation batches (text-only "
                                  "GRPO; see r1repro/trainers/dynamic_sampling.py)", "dynamic_sampling")
            pad_id = self._tokenizer.pad_token_id
            gathered = {}
            for key, value in out.items():
                if value is None or key in RECOMPUTED:
                    continue
                left = key in LEFT_PADDED
                fill = (LEFT_PADDED | RIGHT_PADDED).get(key, 0)
                fill = pad_id if fill == "pad" else fill
                t = value.contiguous()
                if t.ndim >= 2 and self.accelerator.num_processes > 1:
                    t = self.accelerator.pad_across_processes(t, dim=1, pad_index=fill, pad_first=left)
                gathered[key] = self.accelerator.gather(t) if self.accelerator.num_processes > 1 else t
            return gathered

        def _ds_metric(self, rewards_per_func):
            """The per-row metric (global rows) and the weighted total reward, NaN where unscored."""
            weights = self.reward_weights.to(rewards_per_func.device).unsqueeze(0)
            total = (rewards_per_func * weights).nansum(dim=1)
            total[torch.isnan(rewards_per_func).all(dim=1)] = torch.nan  # as TRL marks unscorable rows
            if self.dynamic_sampling.metric == "reward":
                return total, total
            return rewards_per_func[:, list(self.reward_func_names).index(self.dynamic_sampling.metric)], total

        # ---------------------------------------------------------------------------------------------
        def _generate_and_score_completions(self, inputs):
            if not self.model.training:  # eval batches are scored as TRL scores them
                return super()._generate_and_score_completions(inputs)
            mode, g = "train", self.num_generations
            metrics = self._metrics[mode]
            target = self.args.generation_batch_size  # global rows TRL expects; a multiple of g
            local = len(inputs)
            kept, dropped = [], []  # (gathered batch, row index, per-row total-reward zero-std flags)
            n_kept = n_dropped_groups = draws = 0
            tokens_before, completion_tokens = self.state.num_input_tokens_seen, 0
            zero_std_generated = []
            # Every rank runs this loop the same number of times: the stop rule reads only gathered values
            # (rewards_per_func, row counts), so generation (vLLM colocate/server, HF) and the collectives inside
            # TRL's method line up across ranks.
            while draws < self.dynamic_sampling.max_generation_batches and n_kept < target:
                batch = inputs if draws == 0 else self._ds_next_inputs()
                out = super()._generate_and_score_completions(batch)
                draws += 1
                metric, total = self._ds_metric(self._ds_rewards)
                rows = metric.numel()
                completion_tokens += metrics["completions/mean_length"][-1] * rows
                total_zero = zero_std(total, g).repeat_interleave(g)
                # A group the metric's reward does not score at all (NaN: all_scenario_rl routes rewards by
                # task) is judged by its total reward instead of being dropped for ever.
                unscored = torch.isnan(metric.view(-1, g)).all(dim=1).repeat_interleave(g)
                drop = torch.where(unscored, total_zero, zero_std(metric, g).repeat_interleave(g))
                zero_std_generated.append(drop.float().mean().item())
                gathered = self._ds_gather(out)
                gathered["_total_zero"] = total_zero.to(gathered["advantages"].device)
                keep_idx = (~drop).nonzero(as_tuple=True)[0].to(gathered["advantages"].device)
                drop_idx = drop.nonzero(as_tuple=True)[0].to(gathered["advantages"].device)
                kept.append((gathered, keep_idx))
                dropped.append((gathered, drop_idx))
                n_kept += keep_idx.numel()
                n_dropped_groups += drop_idx.numel() // g
            # The trained global batch: kept groups in draw order, cut to the target (both multiples of g, so
            # only whole groups are cut); short of it after N draws, completed with dropped groups.
            filled = max(0, target - n_kept)
            parts, need = [], target
            for gathered, idx in kept + dropped:
                take = idx[:need]
                if take.numel():
                    parts.append((gathered, take))
                need -= take.numel()
                if need == 0:
                    break
            joined = self._ds_join(parts)
            trained_zero = joined.pop("_total_zero")
            loss_mask = joined["completion_mask"] * joined.get("tool_mask", 1)
            # TRL's num_items_in_batch: loss tokens of the generation batch on all ranks (here: all of it).
            num_items = loss_mask.sum().to(joined["completion_mask"].device)
            rank = self.accelerator.process_index
            output = {k: v[rank * local:(rank + 1) * local] for k, v in joined.items()}
            output["num_items_in_batch"] = num_items
            # Logging: TRL appended frac_reward_zero_std once per draw (over everything generated); the
            # trained batch's value replaces those, the generated one is kept under dynamic_sampling/.
            del metrics["frac_reward_zero_std"][-draws:]
            metrics["frac_reward_zero_std"].append(trained_zero.float().mean().item())
            self._ds_generated_tokens += int(round(completion_tokens))
            metrics["dynamic_sampling/generation_batches"].append(draws)
            metrics["dynamic_sampling/groups_kept"].append(min(n_kept, target) // g)
            metrics["dynamic_sampling/groups_dropped"].append(n_dropped_groups)
            metrics["dynamic_sampling/groups_surplus"].append(max(0, n_kept - target) // g)
            metrics["dynamic_sampling/groups_filled_zero_std"].append(filled // g)
            metrics["dynamic_sampling/max_reached"].append(float(filled > 0))
            metrics["dynamic_sampling/frac_zero_std_generated"].append(sum(zero_std_generated) / draws)
            metrics["dynamic_sampling/generated_tokens"].append(completion_tokens)
            metrics["dynamic_sampling/tokens"].append(self.state.num_input_tokens_seen - tokens_before)
            metrics["dynamic_sampling/generated_tokens_total"] = [self._ds_generated_tokens]
            return output

        def _ds_join(self, parts):
            """Rows `index` of each gathered batch, joined: padded to the longest prompt / completion."""
            joined = {}
            for key in parts[0][0]:
                pieces = [batch[key][index] for batch, index in parts]
                if pieces[0].ndim >= 2:
                    left = key in LEFT_PADDED
                    fill = (LEFT_PADDED | RIGHT_PADDED).get(key, 0)
                    fill = self._tokenizer.pad_token_id if fill == "pad" else fill
                    length = max(p.size(1) for p in pieces)
                    pieces = [pad_to(p, length, fill, left) for p in pieces]
                joined[key] = torch.cat(pieces, dim=0)
            return joined

    return DynamicSamplingGRPOTrainer
