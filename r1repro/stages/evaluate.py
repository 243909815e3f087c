"""Evaluate a stage's final model on the recipe's eval tasks and store <output_dir>/eval.json."""

from __future__ import annotations

from pathlib import Path

from r1repro.data import load_rows
from r1repro.stages.common import is_main_process, write_json_atomic


def evaluate_stage(model_dir: str, eval_args, data_args, seed: int = 0) -> dict:
    if eval_args.eval_num_problems <= 0 or not eval_args.eval_tasks or not is_main_process():
        return {}
    from r1repro.evaluation import EvalSettings, EvalTask, evaluate_model

    tasks = []
    for spec in eval_args.eval_tasks:
        rows = load_rows(spec["dataset"], data_args.test_split, eval_args.eval_num_problems, seed,
                         problem_column=data_args.problem_column, solution_column=data_args.solution_column)
        tasks.append(EvalTask(name=spec["name"], rows=rows, answer_reward=spec.get("answer_reward", "accuracy")))
    settings = EvalSettings(
        template=data_args.prompt_template,
        system_prompt=data_args.system_prompt,
        num_samples=eval_args.eval_num_samples,
        temperature=eval_args.eval_temperature,
        top_p=eval_args.eval_top_p,
        max_new_tokens=eval_args.eval_max_new_tokens,
        seed=seed,
        backend=eval_args.eval_backend,
    )
    results = evaluate_model(model_dir, tasks, settings, samples_path=str(Path(model_dir) / "eval_samples.jsonl"))
    write_json_atomic(Path(model_dir) / "eval.json", results)
    for task, metrics in results.items():
        shown = ", ".join(f"{k}={v:.3f}" for k, v in metrics.items() if isinstance(v, float) and "@" not in k or k == "pass@1")
        print(f"[eval] {Path(model_dir).name} {task}: {shown}")
    return results
