"""R1-style evaluation: pass@1 averaged over k samples, pass@k, cons@k, format rate, length,
language consistency; a benchmark registry; JSON / markdown / PNG reports.

    from r1repro.evaluation import EvalSettings, EvalTask, evaluate_model
    evaluate_model("runs/tiny/r1zero", [EvalTask("reasoning", rows)], EvalSettings(template="tiny"))
"""

from r1repro.evaluation.core import EvalTask, evaluate_model
from r1repro.evaluation.metrics import cons_at_k, pass_at_k
from r1repro.evaluation.settings import EvalSettings

__all__ = ["EvalSettings", "EvalTask", "cons_at_k", "evaluate_model", "pass_at_k"]
