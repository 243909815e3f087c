"""bench/robustness.py's pure parts: CPU flags, the configurations and the subset, the aggregation of
report.json files (today's findings without numbers, and findings with differences, intervals and
targets), the target checks and the markdown. Nothing here runs a pipeline."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rb():
    spec = importlib.util.spec_from_file_location("bench_robustness", ROOT / "bench" / "robustness.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


CPUINFO = """processor\t: 0
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512bw avx512vl avx512dq amx_tile
processor\t: 1
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512bw avx512vl avx512dq
"""


def test_cpu_flags_are_those_every_core_has(rb):
    flags = rb.cpu_flags(CPUINFO)
    assert "avx512f" in flags and "amx_tile" not in flags
    assert rb.supported(rb.CAPABILITY_FLAGS, flags) == ["default", "avx2", "avx512"]
    assert rb.supported(rb.CAPABILITY_FLAGS, rb.cpu_flags("flags : sse4_2 avx avx2 fma")) == ["default", "avx2"]
    assert rb.supported(rb.CAPABILITY_FLAGS, rb.cpu_flags("flags : avx avx512f")) == ["default"]  # no fma
    assert rb.cpu_flags("") == set()


def test_configs_names_env_and_order(rb):
    configs = rb.enumerate_configs(["default", "avx2", "avx512"])
    assert len(configs) == 18 and len({c.name for c in configs}) == 18
    assert [c.threads for c in configs] == [1] * 9 + [2] * 9  # 1-thread ones first: they pair up on 2 cores
    c = rb.Config("avx2", 1, 2)
    assert c.name == "avx2-t1-s2"
    env = c.env({"ATEN_CPU_CAPABILITY": "avx512", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "HOME": "/root"})
    assert env["ATEN_CPU_CAPABILITY"] == "avx2" and env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"
    assert "MKL_ENABLE_INSTRUCTIONS" not in env and env["HOME"] == "/root"  # the caller's knobs do not leak
    assert env["PYTHONPATH"].split(":")[0] == str(ROOT)
    mkl = rb.Config("default", 2, 0, "AVX2")
    assert mkl.name == "default-t2-s0-mklavx2" and mkl.env({})["MKL_ENABLE_INSTRUCTIONS"] == "AVX2"
    assert len(rb.enumerate_configs(["default"], mkl=[None, "AVX2"])) == 12


def test_subset_covers_every_capability_and_seed_and_fits_the_hour(rb):
    configs = rb.subset(rb.enumerate_configs(["default", "avx2", "avx512"]))
    assert len(configs) == 9
    assert {(c.capability, c.seed) for c in configs if c.threads == 1} == {
        (cap, s) for cap in ("avx2", "avx512") for s in (0, 1, 2)} | {("default", 0)}
    assert {(c.capability, c.seed) for c in configs if c.threads == 2} == {(cap, 0) for cap in ("avx2", "avx512")}
    assert rb.plan_wall_s(configs, rb.DEFAULT_PIPELINE, cores=2) <= 60 * 60
    # without AVX-512: avx2 x seeds 0-2 at 1 thread and seed 0 at 2, default seed 0 at 1 thread
    assert len(rb.subset(rb.enumerate_configs(["default", "avx2"]))) == 5


def test_pick_and_plan(rb):
    configs = rb.enumerate_configs(["default", "avx2"])
    assert [c.name for c in rb.pick(configs, ["avx2-t2-s1", "default-t1-s0"])] == ["avx2-t2-s1", "default-t1-s0"]
    with pytest.raises(ValueError, match="unknown config avx512-t1-s0"):
        rb.pick(configs, ["avx512-t1-s0"])
    one, two = rb.Config("default", 1, 0), rb.Config("avx2", 2, 0)
    # two 1-thread configs share the cores: the wall time of one (slower: 1 thread, default kernels) run;
    # a 2-thread one takes both cores
    est = rb.EST_S["pipeline_r1zero.yaml"]
    assert rb.plan_wall_s([one, one], "x/pipeline_r1zero.yaml", 2) == \
        pytest.approx(est * rb.ONE_THREAD_SLOWDOWN * rb.DEFAULT_KERNELS_SLOWDOWN)
    assert rb.plan_wall_s([two], "x/pipeline_r1zero.yaml", 2) == pytest.approx(est)
    assert rb.plan_wall_s([two], "recipes/tiny/studies.yaml", 2) == pytest.approx(rb.EST_S["studies.yaml"])


def test_check_env(rb):
    c = rb.Config("avx2", 1, 0)
    assert rb.check_env(c, {"threads": 1, "capability": "AVX2"}) is None
    assert "2 threads" in rb.check_env(c, {"threads": 2, "capability": "AVX2"})
    assert "AVX512 kernels" in rb.check_env(c, {"threads": 1, "capability": "AVX512"})


def _evals(base=0.01, r1zero=0.5, general=0.9, nogeneral=None):
    evals = {"base": {"reasoning": {"accuracy_greedy": base, "pass@1": 0.05}, "general": {"accuracy_greedy": general}},
             "r1zero": {"reasoning": {"accuracy_greedy": r1zero, "pass@1": 0.4, "format_rate": 0.98}}}
    if nogeneral is not None:
        evals["rejection_sft"] = {"general": {"accuracy_greedy": 0.88}}
        evals["rejection_sft_nogeneral"] = {"general": {"accuracy_greedy": nogeneral}}
    return evals


def _finding(effect, a, b, task, metric, va, vb, ci, verdict, target=None):
    return {"effect": effect, "claim": f"{a} > {b}", "a": a, "b": b, "task": task, "metric": metric, "value_a": va,
            "value_b": vb, "diff": None if va is None else va - vb, "ci95": ci, "n": 500, "verdict": verdict,
            "holds": {"holds": True, "does not hold": False}.get(verdict), "evidence": "...", "target": target}


def test_target_ok(rb):
    assert rb.target_ok({"diff": 0.30, "target": {"min_diff": 0.30}}) is True  # at the target is enough
    assert rb.target_ok({"diff": 0.29, "target": {"min_diff": 0.30}}) is False
    assert rb.target_ok({"diff": 0.0, "target": {"min_diff": 0.0}}) is False  # a zero target means "raises"
    assert rb.target_ok({"diff": 0.01, "target": {"min_diff": 0.0}}) is True
    assert rb.target_ok({"diff": -0.05, "target": {"min_diff": -0.05}}) is True
    assert rb.target_ok({"value_a": 0.8, "diff": 0.0, "target": {"min_value": 0.8}}) is True
    assert rb.target_ok({"value_a": 0.79, "target": {"min_value": 0.8}}) is False
    assert rb.target_ok({"diff": None, "target": {"min_diff": 0.3}}) is None
    assert rb.target_ok({"diff": 0.5, "target": None}) is None


def test_aggregate_legacy_reports_computes_targets_from_evals(rb):
    legacy = [{"effect": "R1-Zero: RL from the base raises accuracy", "holds": True, "evidence": "..."}]
    reports = {"a": {"evals": _evals(0.01, 0.57), "findings": legacy},
               "b": {"evals": _evals(0.01, 0.03, general=0.75), "findings": legacy},
               "c": {"evals": _evals(0.00, 0.40)}}
    effects = {e["effect"]: e for e in rb.aggregate(reports)}
    named = effects["R1-Zero: RL from the base raises accuracy"]
    assert named["verdicts"]["holds"] == 2 and named["min"] is None and named["configs"] == 2
    r1 = effects["target: r1zero - base (reasoning accuracy_greedy)"]
    assert r1["min"] == pytest.approx(0.02) and r1["max"] == pytest.approx(0.56)
    assert r1["median"] == pytest.approx(0.40) and r1["measured"] == 3
    assert r1["min_meets_target"] is False and r1["configs_meeting_target"] == 2
    general = effects["target: base (general accuracy_greedy)"]
    assert general["shown"] == "value_a" and general["min"] == 0.75 and general["min_meets_target"] is False
    distill = effects["target: distill - student_grpo (reasoning accuracy_greedy)"]
    assert distill["measured"] == 0 and distill["min_meets_target"] is None


def test_aggregate_findings_with_intervals_and_targets(rb):
    def report(diff, lo, verdict, nogeneral):
        return {"evals": _evals(0.01, 0.01 + diff, nogeneral=nogeneral), "findings": [
            _finding("R1-Zero raises accuracy", "r1zero", "base", "reasoning", "accuracy_greedy", 0.01 + diff, 0.01,
                     [lo, diff + 0.05], verdict, {"min_diff": 0.30}),
            _finding("LoRA forgets less", "lora", "full", "general", "accuracy_greedy", None, None, None,
                     "not measured")]}
    reports = {"x": report(0.50, 0.45, "holds", 0.6), "y": report(0.35, 0.29, "holds", 0.8),
               "z": report(0.02, -0.03, "inconclusive", 0.82)}
    effects = {e["effect"]: e for e in rb.aggregate(reports)}
    r1 = effects["R1-Zero raises accuracy"]
    assert (r1["min"], r1["max"]) == (pytest.approx(0.02), pytest.approx(0.50))
    assert r1["worst_ci_low"] == -0.03 and r1["verdicts"] == {"holds": 2, "does not hold": 0, "inconclusive": 1,
                                                               "not measured": 0}
    assert r1["min_meets_target"] is False and r1["configs_meeting_target"] == 2
    assert "target: r1zero - base (reasoning accuracy_greedy)" not in effects  # the finding covers it
    assert effects["LoRA forgets less"]["verdicts"]["not measured"] == 3
    stage3 = effects["target: rejection_sft - rejection_sft_nogeneral (general accuracy_greedy)"]
    assert stage3["min"] == pytest.approx(0.06) and stage3["min_meets_target"] is False
    # a value target (findings.at_least): the table shows the value, and the interval moves onto it
    floor = {**_finding("base general", "base", None, "general", "accuracy_greedy", 0.85, 0.8, [-0.02, 0.1],
                        "inconclusive", {"min_value": 0.8}), "diff": 0.05}
    (g, *_) = [e for e in rb.aggregate({"v": {"evals": {}, "findings": [floor]}}) if e["effect"] == "base general"]
    assert (g["shown"], g["min"], g["min_meets_target"]) == ("value_a", 0.85, True)
    assert g["worst_ci_low"] == pytest.approx(0.78)
    assert not any(e["effect"].startswith("target: base ") for e in rb.aggregate({"v": {"findings": [floor]}}))
    # a finding whose own target is absent gets the target by its (a, b, task, metric)
    untargeted = {"evals": {}, "findings": [{**_finding("d", "distill", "student_grpo", "reasoning", "accuracy_greedy",
                                                        0.31, 0.01, [0.2, 0.4], "holds"), "target": None}]}
    (d,) = [e for e in rb.aggregate({"u": untargeted}) if e["effect"] == "d"]
    assert d["target"] == {"min_diff": 0.15} and d["min_meets_target"] is True


def test_headline_and_markdown(rb):
    reports = {"avx2-t1-s0": {"evals": _evals(0.01, 0.57)}, "default-t2-s0": {"evals": _evals(0.0, 0.03)}}
    columns, rows = rb.headline(reports)
    assert columns[:3] == ["base greedy", "base pass@1", "r1zero greedy"] and "base general greedy" in columns
    assert "distill greedy" not in columns  # nobody measured it
    assert rows[1]["config"] == "default-t2-s0" and rows[1]["r1zero greedy"] == 0.03
    runs = {n: {"exit_code": 0, "wall_s": 300, "float_path": "abc"} for n in reports}
    text = rb.markdown(rb.aggregate(reports), columns, rows, runs)
    assert "| target: r1zero - base (reasoning accuracy_greedy) | diff >= +0.3 | +0.030 | +0.295 | +0.560 |" in text
    assert "**no**" in text and "| avx2-t1-s0 | 0 | 300 | abc | 0.010 |" in text
