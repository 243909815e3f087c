"""Regenerate tests/data/peer_reward_cases.py from the peers' test files (run by hand, not by the suite).

    python tests/data/make_peer_reward_cases.py TRL_GIT OPENR1_GIT MATHVERIFY_GIT > tests/data/peer_reward_cases.py

Each argument is a git directory (a clone or a bare mirror) of huggingface/trl, huggingface/open-r1 and
huggingface/Math-Verify; the files are read at HEAD with `git show`, and the commit of each is written into
the header. TRL's and open-r1's accuracy tests are a handful of hand-written calls: their cases are
transcribed below (each with its test's name) and checked against the test file's text, so that a peer
that changes a case makes this script fail instead of silently keeping the old one. Math-Verify's cases are
its pytest parametrizations, read with `ast` (commented-out cases are not cases). A case's id is
`file::test[i]`: the i-th row of the test's parametrize list (0-based, counting rows left out), or for TRL and
open-r1 the i-th sample of the test's call.

Which cases are strict (kept): a definite expected verdict of a math *accuracy* check, run with the
comparison settings our `accuracy` uses (math-verify's `verify` with its defaults: strict=True,
float_rounding=6, allow_set_relation_comp=False). Left out, and counted in the header: rows run with other
settings (precision 2/4/5, allow_set_relation_comp=True, strict=False), multiple-choice letter extraction
(test_string_extraction.py) and tests that are not (gold, prediction, verdict) rows (configs, timeouts,
raise_on_error, test_precision's direct sympy calls, TRL's reasoning reward with custom delimiters).

How a Math-Verify prediction becomes a completion (fixed rule, applied to every row, never per case): a
prediction that contains `\\boxed` is used as the whole completion (we read its last box, as from a
MATH-style model output); any other prediction is put in an R1 completion's answer block,
`<think> working </think> <answer> PRED </answer>`. The gold is passed as written.
"""

from __future__ import annotations

import ast
import subprocess
import sys

R1 = " <think> working </think> <answer> {} </answer>"


def show(git_dir: str, path: str) -> str:
    return subprocess.run(["git", "--git-dir", git_dir, "show", f"HEAD:{path}"], capture_output=True, text=True,
                          check=True).stdout


def head(git_dir: str) -> str:
    return subprocess.run(["git", "--git-dir", git_dir, "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def msg(content: str) -> list[dict]:
    return [{"content": content}]


# (test, completion content, gold, expected): transcribed from the call and its asserts.
TRL_FILE = "tests/test_rewards.py"
TRL = [
    # TestAccuracyReward (trl.rewards.accuracy_reward)
    ("TestAccuracyReward::test_accuracy_reward_correct_answer", r"\boxed{\frac{63}{400}}", r"\frac{63}{400}", 1.0),
    ("TestAccuracyReward::test_accuracy_reward_correct_answer", r"\boxed{\frac{63}{400}}", "63/400", 1.0),
    ("TestAccuracyReward::test_accuracy_reward_wrong_answer", r"\boxed{\frac{64}{400}}", r"\frac{63}{400}", 0.0),
    ("TestAccuracyReward::test_accuracy_reward_wrong_answer_no_latex", r"\boxed{3}", "6", 0.0),
    ("TestAccuracyReward::test_accuracy_reward_unparsable_gold", "Answer is forty two.", "Answer is forty two.", None),
    ("TestAccuracyReward::test_accuracy_reward_unparsable_gold", r"Some other content. \boxed{43}.",
     "Answer is forty three.", None),
    ("TestAccuracyReward::test_accuracy_reward_in_worker_thread", r"\boxed{\frac{1}{3}}", r"\frac{1}{3}", 1.0),
    # TestReasoningAccuracyReward (trl.rewards.reasoning_accuracy_reward, default delimiters ["</think>"])
    ("TestReasoningAccuracyReward::test_correct_answer_yields_unit_reward",
     r"<think> Reasoning content </think> \boxed{\frac{63}{400}}", r"\frac{63}{400}", 1.0),
    ("TestReasoningAccuracyReward::test_correct_answer_yields_unit_reward",
     r"Reasoning content </think> \boxed{\frac{63}{400}}", r"\frac{63}{400}", 1.0),
    ("TestReasoningAccuracyReward::test_incorrect_answer_yields_zero_reward",
     r"<think> Reasoning content </think> \boxed{\frac{64}{400}}", r"\frac{63}{400}", 0.0),
    ("TestReasoningAccuracyReward::test_correct_answer_in_reasoning_yields_zero_reward",
     r"<think> My answer is \boxed{42} </think> Some other text.", r"\boxed{42}", 0.0),
    ("TestReasoningAccuracyReward::test_correct_answer_in_reasoning_yields_zero_reward",
     r"<think> The answer is \boxed{42} </think> Here's a wrong answer: \boxed{43}.", r"\boxed{42}", 0.0),
    ("TestReasoningAccuracyReward::test_incomplete_reasoning_yields_zero_reward",
     r"<think> Incomplete reasoning without closing tag", r"\frac{63}{400}", 0.0),
    ("TestReasoningAccuracyReward::test_incomplete_reasoning_yields_zero_reward",
     r"Correct answer \frac{63}{400} but completely missing reasoning content", r"\frac{63}{400}", 0.0),
    ("TestReasoningAccuracyReward::test_unparsable_gold_solution_yields_none_reward",
     r"<think> Reasoning content </think> \boxed{42}", "forty two", None),
]

OPENR1_FILE = "tests/test_rewards.py"
OPENR1 = [
    # TestRewards (open_r1.rewards.accuracy_reward)
    ("TestRewards::test_accuracy_reward_correct_answer", r"\boxed{\frac{63}{400}}", r"\frac{63}{400}", 1.0),
    ("TestRewards::test_accuracy_reward_wrong_answer", r"\boxed{\frac{64}{400}}", r"\frac{63}{400}", 0.0),
    ("TestRewards::test_accuracy_reward_wrong_answer_no_latex", r"\boxed{3}", "6", 0.0),
    ("TestRewards::test_multiple_completions", r"\boxed{\frac{63}{400}}", r"\frac{63}{400}", 1.0),
    ("TestRewards::test_multiple_completions", r"\boxed{\frac{64}{400}}", r"\frac{63}{400}", 0.0),
    # len_reward's gold check is accuracy_reward's (parse -> nothing = skip); its test asserts the gold is
    # unparseable (the reward then treats the sample as correct: 0.5 for the shortest). Our skip is None.
    ("TestRewards::test_unparseable_solution (len_reward's gold check)", r"\boxed{answer}", "unparseable_latex", None),
]

MV_FILES = ["tests/test_all.py", "tests/test_boxed.py", "tests/test_numina_cases.py", "tests/test_open_thoughts.py",
            "tests/test_strict.py", "tests/test_yujianll.py"]
DEFAULTS = {"precision": 6, "strict": True, "allow_set_relation_comp": False}


def _settings(func: ast.FunctionDef) -> dict:
    """The comparison settings a test's body passes as constants (compare_strings(..., precision=5))."""
    fixed = {}
    for node in ast.walk(func):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "compare_strings":
            for kw in node.keywords:
                if kw.arg in DEFAULTS and isinstance(kw.value, ast.Constant):
                    fixed[kw.arg] = kw.value.value
    return fixed


def math_verify_cases(git_dir: str) -> tuple[list[dict], dict]:
    cases, left_out = [], {}
    for path in MV_FILES:
        tree = ast.parse(show(git_dir, path))
        for func in [n for n in tree.body if isinstance(n, ast.FunctionDef)]:
            for dec in func.decorator_list:
                if not (isinstance(dec, ast.Call) and getattr(dec.func, "attr", "") == "parametrize"):
                    continue
                names = [n.strip() for n in ast.literal_eval(dec.args[0]).split(",")]
                try:
                    rows = ast.literal_eval(dec.args[1])
                except ValueError:  # an f-string row (test_float_precision): computed, not literal
                    rows = None
                fixed = _settings(func)
                if rows is None:
                    left_out[f"{path}::{func.name} {fixed} (rows computed with f-strings)"] = len(dec.args[1].elts)
                    continue
                for i, row in enumerate(rows):
                    values = dict(zip(names, row))
                    settings = {**DEFAULTS, **fixed, **{k: values[k] for k in DEFAULTS if k in values}}
                    expected = values.get("expected", values.get("result"))
                    test = f"{path}::{func.name}"
                    if settings != DEFAULTS:
                        diff = {k: v for k, v in settings.items() if v != DEFAULTS[k]}
                        key = f"{test} {diff}"
                        left_out[key] = left_out.get(key, 0) + 1
                        continue
                    pred = values["pred"]
                    completion = pred if "\\boxed" in pred else R1.format(pred)
                    cases.append({"source": "math-verify", "id": f"{path}::{func.name}[{i}]", "gold": values["gold"],
                                  "completion": completion, "expected": float(expected)})
    return cases, left_out


def check_transcribed(text: str, rows: list, name: str) -> None:
    for test, content, gold, _ in rows:
        method = test.split("::")[1].split(" ")[0]
        assert f"def {method}(" in text, f"{name}: {method} is no longer in the file"
        for s in (content, gold):
            assert repr(s)[1:-1] in text or s in text or s.replace("\\", "\\\\") in text, f"{name}: {s!r} not found"


HEADER = """\
# ruff: noqa: E501  (the peers' strings, verbatim, one case a line)
\"\"\"The math accuracy cases of three peers' test suites, as (gold, completion, expected) data for
tests/test_peer_rewards.py. Generated by tests/data/make_peer_reward_cases.py (its docstring has the rules:
which cases are strict, how a Math-Verify prediction becomes a completion); do not edit by hand.

Sources, all Apache License 2.0, (c) The HuggingFace Team; the cases are copied from their tests:
- huggingface/trl @ {trl}: {trl_file}
- huggingface/open-r1 @ {openr1}: {openr1_file}
- huggingface/Math-Verify @ {mathverify}:
  {mv_files}
  (Math-Verify's LICENCE is Apache-2.0; some of its test files still carry an older MIT header)

expected is the peer's verdict: 1.0 / 0.0, or None where the peer skips the sample (unparseable gold).
Math-Verify rows run with settings our reward does not use, left out:
"""


def main(trl: str, openr1: str, mathverify: str) -> None:
    check_transcribed(show(trl, TRL_FILE), TRL, "trl")
    check_transcribed(show(openr1, OPENR1_FILE), OPENR1, "open-r1")
    cases = []
    for source, path, rows in (("trl", TRL_FILE, TRL), ("open-r1", OPENR1_FILE, OPENR1)):
        seen: dict[str, int] = {}
        for t, c, g, e in rows:  # [i]: the i-th sample of that test's call (0-based)
            i = seen[t] = seen.get(t, -1) + 1
            cases.append({"source": source, "id": f"{path}::{t}[{i}]", "gold": g, "completion": msg(c), "expected": e})
    mv, left_out = math_verify_cases(mathverify)
    cases += mv
    out = sys.stdout
    out.write(HEADER.format(trl=head(trl), openr1=head(openr1), mathverify=head(mathverify), trl_file=TRL_FILE,
                            openr1_file=OPENR1_FILE, mv_files=", ".join(MV_FILES)))
    for test, n in sorted(left_out.items()):
        out.write(f"  {test}: {n}\n")
    out.write('"""\n\nCASES = [\n')
    for case in cases:
        out.write(f"    {case!r},\n")
    out.write("]\n")


if __name__ == "__main__":
    main(*sys.argv[1:4])
