"""The study report: pass@k study spec, forgetting table, effect verdicts, report.json/report.md keys
(synthetic eval dicts and stage directories; no model runs)."""

import json

import numpy as np
import pytest
import yaml

from r1repro.config import ConfigError
from r1repro.evaluation.stats import point, units_from_records
from r1repro.findings import findings
from r1repro.pipeline import load_pipeline_recipe
from r1repro.report import pass_at_k_plot_evals, write_report
from r1repro.studies import (
    PassAtKStudy,
    forgetting_rows,
    forgetting_table,
    merge_study,
    parse_study,
    read_study,
    run_pass_at_k_study,
)


def evals(base_general=0.8, r1zero_general=0.5, lang=(0.78, 0.95), acc_lang=(0.51, 0.31), n=500):
    """Stage-eval metrics without per-problem records: the findings fall back to Newcombe intervals on n."""
    e = {
        "base": {"reasoning": {"accuracy_greedy": 0.02, "pass@1": 0.04, "pass@4": 0.14, "mean_length": 43.0},
                 "general": {"accuracy_greedy": base_general, "pass@1": 0.7}},
        "r1zero": {"reasoning": {"accuracy_greedy": acc_lang[0], "pass@1": 0.29, "pass@4": 0.66, "mean_length": 65.0,
                                 "language_consistency": lang[0]},
                   "general": {"accuracy_greedy": r1zero_general, "pass@1": 0.4}},
        "reasoning_rl": {"general": {"accuracy_greedy": 0.3, "pass@1": 0.3}},
        "rejection_sft": {"general": {"accuracy_greedy": 0.7, "pass@1": 0.6}},
        "rejection_sft_nogeneral": {"general": {"accuracy_greedy": 0.2, "pass@1": 0.2}},
        "distill": {"reasoning": {"accuracy_greedy": 0.10}},
        "student_grpo": {"reasoning": {"accuracy_greedy": 0.01}},
        "r1zero_lang": {"reasoning": {"accuracy_greedy": acc_lang[1], "language_consistency": lang[1]}},
    }
    for per_task in e.values():
        for metrics in per_task.values():
            metrics["n"] = n
    return e


STUDY = {
    "settings": {"num_problems": 50, "num_samples": 64, "temperature": 0.6, "top_p": 0.95, "max_new_tokens": 96,
                 "ks": [1, 2, 4, 8, 16, 32, 64]},
    "curves": {
        "base": {"reasoning": {"pass@1": 0.04, "pass@2": 0.08, "pass@4": 0.15, "pass@8": 0.28, "pass@16": 0.45,
                               "pass@32": 0.62, "pass@64": 0.80, "n": 50}},
        "r1zero": {"reasoning": {"pass@1": 0.30, "pass@2": 0.45, "pass@4": 0.58, "pass@8": 0.66, "pass@16": 0.70,
                                 "pass@32": 0.74, "pass@64": 0.76, "n": 50}},
    },
}


def verdicts(items):
    return {f["effect"]: f["verdict"] for f in items}


def test_findings_say_which_effects_hold_and_which_do_not():
    items = findings(evals(), STUDY)
    v = verdicts(items)
    assert v["R1-Zero: RL from the base raises accuracy"] == "holds"
    assert v["Language-consistency reward raises consistency"] == "holds"
    assert v["Language-consistency reward costs some accuracy (R1)"] == "holds"
    assert v["Forgetting: reasoning RL lowers general accuracy"] == "holds"
    assert v["Stage 3's general data keeps general skills (vs the same stage without it)"] == "holds"
    assert v["pass@k: RL raises pass@1"] == "holds"
    # 0.80 vs 0.76 on 50 problems, and a gap without per-problem records: the numbers cannot tell
    assert v["pass@k: the base overtakes RL by k = 64"] == "inconclusive"
    assert v["pass@k: the gap to the base narrows by k = 64"] == "inconclusive"
    assert v["Stage cold_start keeps R1-Zero's accuracy (not worse by more than 0.05)"] == "not measured"
    assert v["LoRA learns less: full fine-tuning's reasoning gain over the start exceeds LoRA's"] == "not measured"
    e = {**evals(), "rejection_sft_nogeneral_lora": {"reasoning": {"accuracy_greedy": 0.1, "n": 500},
                                                     "general": {"accuracy_greedy": 0.7, "n": 500}}}
    v = verdicts(findings(e, None))
    assert v["LoRA forgets less: LoRA keeps more general accuracy than full fine-tuning"] == "holds"  # 0.7 vs 0.2
    assert v["LoRA learns less: full fine-tuning's reasoning gain over the start exceeds LoRA's"] == "not measured"
    lora = next(f for f in findings(e, None) if f["effect"].startswith("LoRA forgets less"))
    del e["rejection_sft_nogeneral"]  # the full twin did not finish: not measured, not a crash
    forgets = verdicts(findings(e, None))["LoRA forgets less: LoRA keeps more general accuracy than full fine-tuning"]
    assert forgets == "not measured"
    assert "change from the base (0.800): rejection_sft_nogeneral_lora -0.100, rejection_sft_nogeneral -0.600" in (
        lora["evidence"])
    for f in items:  # "holds" only with an interval that excludes 0 (or the margin) in the claimed direction
        if f["verdict"] == "holds":
            lo, hi = f["ci95"]
            assert lo >= -0.05 if " - 0.05" in f["claim"] else hi < 0 if " < " in f["claim"] else lo >= 0
    r1zero = next(f for f in items if f["effect"] == "R1-Zero: RL from the base raises accuracy")
    assert r1zero["target"] == {"min_diff": 0.30} and r1zero["target_met"] is True
    # the opposite numbers give the opposite verdicts
    v = verdicts(findings(evals(r1zero_general=0.9, lang=(0.9, 0.8), acc_lang=(0.4, 0.6)), None))
    assert v["Forgetting: reasoning RL lowers general accuracy"] == "does not hold"
    assert v["Language-consistency reward raises consistency"] == "does not hold"
    assert v["Language-consistency reward costs some accuracy (R1)"] == "does not hold"
    assert v["pass@k: the base catches up with RL at large k"] == "not measured"  # no study
    # the same gaps on 20 problems: too few to say either way
    v = verdicts(findings(evals(r1zero_general=0.7, lang=(0.8, 0.9), n=20), None))
    assert v["Forgetting: reasoning RL lowers general accuracy"] == "inconclusive"
    assert v["Language-consistency reward raises consistency"] == "inconclusive"


def test_forgetting_is_not_measured_when_the_base_cannot_do_the_task():
    for base_general in (0.0, 0.04):
        items = findings(evals(base_general=base_general, r1zero_general=0.0), None)
        forgetting = next(f for f in items if f["effect"].startswith("Forgetting"))
        assert forgetting["holds"] is None and f"base scores {base_general} " in forgetting["evidence"]
        assert forgetting["verdict"] == "not measured" and forgetting["value_a"] == 0.0  # the numbers stay
        assert all(f["holds"] is None for f in items if f["effect"].startswith("Stage 3"))


def test_forgetting_table_puts_each_checkpoint_next_to_the_base():
    rows = forgetting_rows(evals())
    assert [r["checkpoint"] for r in rows] == ["base", "r1zero", "reasoning_rl", "rejection_sft",
                                               "rejection_sft_nogeneral"]
    assert rows[0]["delta_vs_base_points"] is None and rows[1]["delta_vs_base_points"] == -30.0
    lines = forgetting_table(rows).splitlines()
    assert lines[2] == "| base | 0.800 | 0.700 | – |"
    assert lines[3] == "| r1zero | 0.500 | 0.400 | -30.0 |"


def test_merge_study_adds_only_the_missing_ks_and_plot_keeps_them_apart():
    e = evals()
    plot, _ = pass_at_k_plot_evals(e, STUDY)
    merge_study(e, STUDY)
    assert e["base"]["reasoning"]["pass@64"] == 0.80 and e["r1zero"]["reasoning"]["pass@8"] == 0.66
    assert e["base"]["reasoning"]["pass@4"] == 0.14  # the stage eval's own value stays
    assert "pass@64" not in plot["base"]["reasoning"]
    assert plot["base"]["reasoning: 50 problems x 64 samples"]["pass@64"] == 0.80


def test_study_spec_validates_and_lists_powers_of_two():
    assert parse_study({"num_samples": 64}).ks == (1, 2, 4, 8, 16, 32, 64)
    study = parse_study({"num_samples": 24})
    assert study.ks == study.settings.pass_k == (1, 2, 4, 8, 16, 24)
    # EvalSettings' rules, named as studies.yaml spells the field; then the study's own
    with pytest.raises(ConfigError, match=r"^pass_at_k\.top_p: must be a number in \(0, 1\], got 1\.5$"):
        parse_study({"top_p": 1.5})
    with pytest.raises(ConfigError, match=r"^pass_at_k\.num_samples: must be >= 2 for a curve, got 1$"):
        parse_study({"num_samples": 1})
    with pytest.raises(ConfigError, match="unknown field 'samples'"):
        parse_study({"samples": 64})
    with pytest.raises(ConfigError, match="pass_at_k.checkpoints"):
        parse_study({"checkpoints": "base"})


def test_study_spec_is_the_flat_studies_yaml_mapping():
    # DONE.json's fingerprint: the same keys and values as before the study held an EvalSettings, so a
    # finished study is not redone
    spec = {"checkpoints": ["base", "r1zero", "distill"], "benchmark": "tiny_addition", "label": "reasoning",
            "num_problems": 50, "num_samples": 64, "temperature": 0.6, "top_p": 0.95, "max_new_tokens": 96,
            "template": "tiny", "seed": 0}
    assert list(PassAtKStudy().spec().items()) == list(spec.items())
    assert parse_study(spec).spec() == spec and parse_study({**spec, "seed": 3}).settings.seed == 3


def test_studies_recipe_reuses_the_demo_stages_unchanged():
    _, demo, _ = load_pipeline_recipe("recipes/tiny/pipeline.yaml", "runs/x")
    _, studies, recipe = load_pipeline_recipe("recipes/tiny/studies.yaml", "runs/x")
    assert studies[: len(demo)] == demo  # same entries, so DONE.json fingerprints match after `make demo`
    assert {s["name"] for s in studies[len(demo):]} == {"r1zero_lang", "rejection_sft_nogeneral",
                                                        "rejection_sft_nogeneral_lora"}
    study = parse_study(recipe["pass_at_k"])
    assert (study.settings.num_samples, study.settings.temperature, study.settings.top_p) == (64, 0.6, 0.95)
    assert study.checkpoints == ["base", "r1zero", "distill"]


def test_report_json_and_md_carry_the_study(tmp_path):
    run = tmp_path / "run"
    names = ["cpt", "r1zero", "r1zero_lang"]
    statuses = {}
    for name in names:
        out = run / name
        out.mkdir(parents=True)
        ckpt = "base" if name == "cpt" else name
        (out / "eval.json").write_text(json.dumps(evals()[ckpt]))
        statuses[name] = {"status": "done", "wall_s": 1.0, "output_dir": str(out)}
    study_dir = run / "pass_at_k"
    study_dir.mkdir()
    (study_dir / "results.json").write_text(json.dumps({
        "evals": STUDY["curves"], "tasks": {"reasoning": 50},
        "settings": {"num_samples": 64, "temperature": 0.6, "top_p": 0.95, "max_new_tokens": 96,
                     "pass_k": [1, 2, 4, 8, 16, 32, 64]}}))
    statuses["pass_at_k"] = {"status": "done", "wall_s": 2.0, "output_dir": str(study_dir)}
    assert read_study(study_dir)["settings"]["num_problems"] == 50
    report = json.loads(write_report(run, [{"name": n} for n in names], statuses).read_text())
    assert report["evals"]["base"]["reasoning"]["pass@64"] == 0.80
    assert report["pass_at_k"]["settings"]["num_samples"] == 64
    assert report["evals"]["r1zero_lang"]["reasoning"]["language_consistency"] == 0.95
    assert {f["effect"] for f in report["findings"]} >= {"Language-consistency reward raises consistency",
                                                         "pass@k: RL raises pass@1"}
    assert (run / "pass_at_k.png").read_bytes()[:4] == b"\x89PNG"
    md = (run / "report.md").read_text()
    assert "## Effects: which hold in this run" in md and "## Forgetting" in md
    assert "| base | 0.040 | 0.080 | 0.150 | 0.280 | 0.450 | 0.620 | 0.800 |" in md
    assert "temperature 0.6, top-p 0.95" in md


def test_study_without_its_checkpoints_is_skipped_not_run(tmp_path):
    study = PassAtKStudy(checkpoints=["base", "distill"])
    status = run_pass_at_k_study(tmp_path, study, {"base": str(tmp_path / "cpt")})
    assert status["status"] == "skipped" and status["missing"] == ["distill"]
    assert not (tmp_path / "pass_at_k").exists()


def test_lora_recipe_is_stage_3_without_general_data_but_for_lora():
    full = yaml.safe_load(open("recipes/tiny/rejection_sft.yaml"))
    lora = yaml.safe_load(open("recipes/tiny/rejection_sft_nogeneral_lora.yaml"))
    own = {"output_dir", "general_fraction", "learning_rate", "use_peft", "lora_r", "lora_alpha", "lora_dropout",
           "lora_target_modules"}
    assert {k: v for k, v in lora.items() if k not in own} == {k: v for k, v in full.items() if k not in own}
    assert lora["use_peft"] is True and lora["general_fraction"] == 0
    assert lora["output_dir"] == "${run_dir}/rejection_sft_nogeneral_lora"
    assert lora["learning_rate"] == pytest.approx(10 * full["learning_rate"])


def write_stage(run, name, records):
    """A finished stage dir with eval_samples.jsonl and the eval.json those records give."""
    out = run / name
    out.mkdir(parents=True)
    (out / "eval_samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    units = units_from_records(records, ks=(1, 2, 4))
    metrics = {task: {**{m: point(u) for m, u in per.items()}, "n": len(per["pass@1"])} for task, per in units.items()}
    (out / "eval.json").write_text(json.dumps(metrics))
    return {"status": "done", "wall_s": 1.0, "output_dir": str(out)}


def records(p_correct, n=200, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        flags = rng.random(5) < p_correct[i % len(p_correct)]
        base = {"task": "reasoning", "prompt_id": f"addition-test-{i}", "problem": f"{i}+1"}
        out.append({**base, "mode": "greedy", "reward": float(flags[0]), "num_tokens": 10})
        out += [{**base, "mode": "sampled", "correct": bool(f), "format": 1.0, "language_consistency": 1.0,
                 "num_tokens": 10 + int(f)} for f in flags[1:]]
    return out


def test_report_pairs_checkpoints_on_their_records(tmp_path):
    run = tmp_path / "run"
    statuses = {"cpt": write_stage(run, "cpt", records([0.05])), "r1zero": write_stage(run, "r1zero", records([0.6]))}
    report = json.loads(write_report(run, [{"name": n} for n in statuses], statuses).read_text())
    f = next(f for f in report["findings"] if f["effect"] == "R1-Zero: RL from the base raises accuracy")
    assert f["ci_method"] == "paired bootstrap over problems" and f["n"] == 200 and f["verdict"] == "holds"
    assert f["ci95"][0] < f["diff"] < f["ci95"][1] and f["ci95"][0] > 0.3
    lo, hi = report["intervals"]["r1zero"]["reasoning"]["pass@4"]
    assert lo < report["evals"]["r1zero"]["reasoning"]["pass@4"] < hi
    md = (run / "report.md").read_text()
    assert f"| {f['diff']:+.2f} [{f['ci95'][0]:+.2f}, {f['ci95'][1]:+.2f}] | 200 | **holds** |" in md
    # records that no longer match eval.json (an older eval) are not paired on: Newcombe from n instead
    metrics = json.loads((run / "r1zero" / "eval.json").read_text())
    metrics["reasoning"]["accuracy_greedy"] += 0.01
    (run / "r1zero" / "eval.json").write_text(json.dumps(metrics))
    report = json.loads(write_report(run, [{"name": n} for n in statuses], statuses).read_text())
    f = next(f for f in report["findings"] if f["effect"] == "R1-Zero: RL from the base raises accuracy")
    assert f["ci_method"].startswith("Newcombe") and "r1zero" not in report["intervals"]
