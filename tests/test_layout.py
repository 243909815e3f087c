"""The layout docs/architecture.md draws is the one git tracks, and the layers stay in order: nothing below
the stage table (r1repro/stages/__init__.py) imports it, so the trainers, rewards and samplers can be read,
tested and reused without the pipeline."""

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The stage table's users: the stages themselves and the tools that drive them.
ABOVE_THE_TABLE = ("r1repro/stages/", "r1repro/check/", "r1repro/slurm/", "r1repro/cli.py", "r1repro/pipeline.py",
                   "r1repro/report.py")
# Packages whose files docs/architecture.md names one by one; the others it names as folders.
NAMED_FILE_BY_FILE = ("r1repro/stages/", "r1repro/trainers/", "r1repro/check/", "r1repro/sandbox/")
STAGE_TABLE_IMPORT = re.compile(r"\s*(from r1repro\.stages\b|import r1repro\.stages\b|from r1repro import stages\b)")


def tracked() -> list[str]:
    out = subprocess.run(["git", "ls-files", "r1repro"], cwd=REPO, capture_output=True, text=True, check=True)
    return out.stdout.split()


def documented() -> set[str]:
    """Paths in docs/architecture.md's package layout block (an indented tree; `a.py, b.py` on one line)."""
    block = (REPO / "docs/architecture.md").read_text().split("## Package layout", 1)[1].split("```", 2)[1]
    named, stack = set(), []  # stack: (indent, folder)
    for line in block.splitlines():
        m = re.match(r"^( *)(\S.*?)(?:\s{2,}|$)", line)
        if not m or not line.strip() or len(m.group(1)) >= 18:  # deeper: a description's continuation
            continue
        indent, head = len(m.group(1)), m.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        base = "".join(folder for _, folder in stack)
        for token in (t.strip() for t in re.split(r"[,+]\s*", head)):
            if token.endswith("/"):
                named.add(base + token)
                stack.append((indent, token))
            elif token.endswith(".py"):
                named.add(base + token)
    return named


def test_no_module_below_the_stage_table_imports_it():
    climbs = [f"{path}: {line.strip()}" for path in tracked()
              if path.endswith(".py") and not path.startswith(ABOVE_THE_TABLE)
              for line in (REPO / path).read_text().splitlines() if STAGE_TABLE_IMPORT.match(line)]
    assert not climbs, "imports that climb to the stage table:\n" + "\n".join(climbs)


def test_architecture_doc_draws_the_tracked_layout():
    files, named = tracked(), documented()
    folders = {str(Path(f).parent) + "/" for f in files}
    missing = [f for f in files if f not in named and (
        f == "r1repro/stages/__init__.py"
        or (not f.endswith("__init__.py") and (f.count("/") == 1 or f.startswith(NAMED_FILE_BY_FILE)))
        or str(Path(f).parent) + "/" not in named)]
    unknown = [n for n in named if n.startswith("r1repro/") and n not in files and n not in folders]
    assert not missing, f"tracked but not in docs/architecture.md's layout: {missing}"
    assert not unknown, f"in docs/architecture.md's layout but not tracked: {unknown}"
