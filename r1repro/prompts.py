"""The one prompt path: what every stage trains on and what every engine samples from.

`PromptBuilder` turns a dataset's `problem` (and, for SFT / DPO / reward models, a response) into
- `train_prompt`: the prompt TRL trains on: a plain string, or conversational messages for `chat`
  (TRL then applies the chat template itself, with the generation prompt);
- `sample_text`: the exact text a generation engine continues: the same prompt rendered to a
  string (for `chat`: the tokenizer's chat template with the generation prompt, system prompt
  honoured), minus a leading BOS the tokenizer adds again when the engine tokenizes it;
- `sft_example` / `preference_example`: TRL's prompt-completion / preference forms; for `chat` the
  completion is an assistant message (conversational), unless the template cannot render an
  assistant turn back verbatim (DeepSeek-R1-Distill's template drops the reasoning of past assistant
  turns) — then the exact rendered strings are used, so training still sees the sampling context.

Chat templates that pre-fill `<think>` (the generation prompt ends with it, as DeepSeek-R1-Distill's
does) are detected from the rendered generation prompt: `think_opened` is then True and the
completion starts inside the think block. Rewards that read the tags get `think_opened`
(`reward_specs`), trace parsing treats samples the same way, and SFT completions start where the
prompt stops, so nothing is doubled.
"""

from __future__ import annotations

from r1repro.config import ConfigError
from r1repro.rewards.text import THINK_OPEN
from r1repro.templates import get_template, render_prompt

# Builtin rewards that read the <think> tag and take `think_opened`.
THINK_AWARE_REWARDS = ("format", "tag_count", "language_consistency")
_PROBE_PROBLEM = "What is 2 + 3?"
_PROBE_REASONING = "PROBE two plus three is five"


def load_tokenizer(source):
    """A tokenizer from a path / hub id (or one already loaded), pad token set as the stages need."""
    if not isinstance(source, str):
        return source
    # Lazy: the pipeline and `r1repro slurm submit-pipeline` import this module (through the report
    # and evaluation) without loading any tokenizer, and transformers costs seconds to import.
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as err:
        raise ConfigError(f"prompt_template: chat needs the tokenizer of {source}, which did not load "
                          f"({str(err).splitlines()[0]})") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


class PromptBuilder:
    def __init__(self, template: str, system_prompt: str | None = None, tokenizer=None, source: str = "the model"):
        """`template`: r1zero | tiny | chat | a file with {problem}. `tokenizer`: required for `chat`
        (a path or a loaded tokenizer); plain templates do not use it (TRL appends EOS to string
        completions itself). `source` names the model in error messages."""
        try:
            self.is_chat = get_template(template) == "chat"  # validates a name or file too
        except ValueError as err:
            raise ConfigError(str(err)) from None
        self.template = template
        self.system_prompt = system_prompt
        self.tokenizer = load_tokenizer(tokenizer) if tokenizer is not None else None
        if self.is_chat:
            if self.tokenizer is None:
                raise ConfigError("prompt_template: chat needs the model's tokenizer")
            if not getattr(self.tokenizer, "chat_template", None):
                raise ConfigError(f"prompt_template: chat needs a chat template, but the tokenizer of {source} "
                                  "has none (use a plain template such as r1zero, or a model with a chat template)")
        probe = self.sample_text(_PROBE_PROBLEM)
        # The text the prompt leaves open for the completion: "<think>\n" for R1-Distill-style templates.
        self.think_prefill = probe[probe.rfind(THINK_OPEN):] if probe.rstrip().endswith(THINK_OPEN) else ""
        self.conversational = self.is_chat and self._assistant_turn_roundtrips()

    @property
    def think_opened(self) -> bool:
        return bool(self.think_prefill)

    # ---------------------------------------------------------------- prompts
    def messages(self, problem: str) -> list[dict]:
        return render_prompt("chat", problem, system_prompt=self.system_prompt)

    def train_prompt(self, problem: str):
        """TRL's prompt column: messages (system prompt first) for chat, else the rendered string."""
        return render_prompt(self.template, problem, system_prompt=self.system_prompt)

    def sample_text(self, problem: str) -> str:
        """The exact text an engine samples from (engines tokenize it with the default special tokens)."""
        if not self.is_chat:
            return self.train_prompt(problem)
        text = self.tokenizer.apply_chat_template(self.messages(problem), tokenize=False, add_generation_prompt=True)
        return self._without_added_bos(text)

    def _without_added_bos(self, text: str) -> str:
        """Chat templates usually write the BOS token themselves; a tokenizer that also adds one would
        double it when an engine tokenizes the text, so drop the template's copy."""
        bos = self.tokenizer.bos_token
        if bos and text.startswith(bos):
            ids = self.tokenizer("x")["input_ids"]
            if ids and ids[0] == self.tokenizer.bos_token_id:
                return text[len(bos):]
        return text

    # ---------------------------------------------------------------- completions
    def completion_text(self, response: str) -> str:
        """A response as the model writes it after the prompt: when the prompt already opened
        `<think>`, the response's own `<think>` is dropped (it is in the prompt)."""
        if self.think_opened and response.lstrip().startswith(THINK_OPEN):
            return response.lstrip()[len(THINK_OPEN):].lstrip()
        return response

    def completion(self, response: str):
        """TRL's completion column: an assistant message for conversational chat, else a string."""
        if not self.conversational:
            return self.completion_text(response)
        # The assistant content is rendered after the template's assistant header; a pre-filled
        # `<think>` belongs to it, so the prompt is a prefix of prompt + completion.
        return [{"role": "assistant", "content": self.think_prefill + self.completion_text(response)}]

    def _prompt_field(self, problem: str):
        return self.train_prompt(problem) if self.conversational or not self.is_chat else self.sample_text(problem)

    def sft_example(self, problem: str, response: str) -> dict:
        return {"prompt": self._prompt_field(problem), "completion": self.completion(response)}

    def preference_example(self, problem: str, chosen: str, rejected: str) -> dict:
        return {"prompt": self._prompt_field(problem), "chosen": self.completion(chosen),
                "rejected": self.completion(rejected)}

    def _assistant_turn_roundtrips(self) -> bool:
        """Does the template render prompt + assistant turn as the generation prompt followed by the
        assistant content? (Not for templates that rewrite past assistant turns.)"""
        content = self.think_prefill + f"{_PROBE_REASONING} </think> <answer> 5 </answer>"
        try:
            full = self.tokenizer.apply_chat_template(
                self.messages(_PROBE_PROBLEM) + [{"role": "assistant", "content": content}], tokenize=False)
        except Exception:  # a template that refuses a trailing assistant turn
            return False
        generation = self.tokenizer.apply_chat_template(self.messages(_PROBE_PROBLEM), tokenize=False,
                                                        add_generation_prompt=True)
        return full.startswith(generation) and content in full

    # ---------------------------------------------------------------- rewards
    def reward_specs(self, specs):
        """Reward specs with `think_opened: true` added to the builtins that read the think tag when
        the prompt pre-fills `<think>` (an explicit value in the recipe wins)."""
        if not self.think_opened or not isinstance(specs, list):
            return specs
        out = []
        for spec in specs:
            if isinstance(spec, str) and spec in THINK_AWARE_REWARDS:
                spec = {"name": spec}
            if isinstance(spec, dict) and spec.get("name") in THINK_AWARE_REWARDS:
                spec = {**spec, "think_opened": spec.get("think_opened", True)}
            out.append(spec)
        return out


def builder_for(template: str, system_prompt: str | None, model: str | None = None, tokenizer=None) -> PromptBuilder:
    """The builder for a recipe: `model` (a path or hub id) supplies the tokenizer when the template
    needs one and `tokenizer` is not given."""
    if tokenizer is None and model and get_template(template) == "chat":
        tokenizer = model
    return PromptBuilder(template, system_prompt, tokenizer, source=model or "the model")


def trace_row(row: dict, where: str) -> dict:
    """One SFT trace as `problem` + `response` strings, from either shape:
    - `problem` / `response` columns (what cold_start and rejection_sft write), or
    - `messages`: user / assistant turns (open-r1's distillation sets); the last assistant turn is the
      response, the user turn before it the problem (a system turn is left to the recipe's system_prompt).
    `where` names the row in errors (file:line)."""
    if "response" not in row and "messages" in row:
        messages = row["messages"]
        if not isinstance(messages, list) or not all(
                isinstance(m, dict) and isinstance(m.get("content"), str) and "role" in m for m in messages):
            raise ConfigError(
                f"{where}: column 'messages' must be a list of {{role, content}} objects with string content")
        roles = [m["role"] for m in messages]
        if "assistant" not in roles:
            raise ConfigError(f"{where}: 'messages' has no assistant turn (the response to train on)")
        last = len(roles) - 1 - roles[::-1].index("assistant")
        users = [m["content"] for m in messages[:last] if m["role"] == "user"]
        if not users:
            raise ConfigError(f"{where}: 'messages' has no user turn before its last assistant turn")
        rest = {k: v for k, v in row.items() if k != "messages"}
        return {**rest, "problem": users[-1], "response": messages[last]["content"]}
    for column in ("problem", "response"):
        if column not in row:
            raise ConfigError(f"{where}: missing column '{column}' (rows need problem + response, or messages)")
        if not isinstance(row[column], str):
            raise ConfigError(f"{where}: column '{column}' must be a string, got {type(row[column]).__name__}")
    return row
