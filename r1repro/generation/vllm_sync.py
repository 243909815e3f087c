"""Policy -> colocated vLLM weight sync that also works where vLLM repacks weights for CPU kernels.

TRL's colocate sync (`VLLMGeneration.sync_weights`, TRL 1.16) calls `model.load_weights(...)` on
vLLM's model. That writes into vLLM's parameters, which is enough on GPU. On CPU, vLLM 0.32 hands
each linear layer's weight to a CPU kernel at load time (a oneDNN or SGL prepacked copy, closed over
in `layer.cpu_linear`) and drops the parameter itself (an empty tensor without a `weight_loader`):
  - on some CPUs `load_weights` then raises AttributeError 'weight_loader';
  - on others it silently updates embeddings and norms only, so rollouts come from a mix of old and
    new weights;
  - a tied `lm_head` keeps its own prepacked copy of the embedding, which no load refreshes.

vLLM's own in-place reload (`model_runner.reload_weights(weights_iterator=...)`, the "layerwise
reload" path) restores each layer's original parameters from metadata recorded at construction,
loads the new tensors and runs the layer's `process_weights_after_loading` again, which repacks them.
What it does not re-run is the processing of layers that received no weights (the tied lm_head), so
those are processed here once more. Whether any of this is needed is read from vLLM's own state: a
layer with a `cpu_linear` kernel holds a derived copy of its weights.
"""

from __future__ import annotations

import types


def holds_packed_weights(model) -> bool:
    """True when vLLM's model keeps CPU-kernel copies of weights that `load_weights` cannot reach."""
    return any(hasattr(module, "cpu_linear") for module in model.modules())


def reload_into_vllm(llm, named_tensors) -> None:
    """Load `(name, tensor)` pairs (HF names) into a colocated `vllm.LLM` through vLLM's in-place
    reload, then re-derive the kernels of layers that share a reloaded weight (tied lm_head)."""
    runner = llm.llm_engine.model_executor.driver_worker.model_runner
    runner.reload_weights(weights_iterator=named_tensors, is_checkpoint_format=True)
    for module in runner.model.modules():
        weight = getattr(module, "weight", None)
        method = getattr(module, "quant_method", None)
        # Layers whose kernel keeps a live weight (remove_weight=False: embeddings, a tied lm_head):
        # re-deriving the kernel is cheap and makes it read the weight as it is now.
        if hasattr(module, "cpu_linear") and weight is not None and weight.numel() > 0 and method is not None:
            method.process_weights_after_loading(module)
    llm.reset_prefix_cache()


def _sync_by_reload(generation) -> None:
    """Replacement for `VLLMGeneration.sync_weights` in colocate mode (bound to the instance)."""
    reload_into_vllm(generation.llm, generation._iter_named_params())


def use_reload_sync_where_needed(trainer) -> bool:
    """Make a GRPOTrainer's colocated vLLM sync go through vLLM's reload path when vLLM holds packed
    CPU weights. Returns whether it did; GPU runs (and server mode) keep TRL's own sync."""
    generation = getattr(trainer, "vllm_generation", None)
    if generation is None or getattr(generation, "mode", None) != "colocate":
        return False
    model = generation.llm.llm_engine.model_executor.driver_worker.model_runner.model
    if not holds_packed_weights(model):
        return False
    generation.sync_weights = types.MethodType(_sync_by_reload, generation)
    return True
