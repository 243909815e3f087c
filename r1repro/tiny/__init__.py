"""The tiny recipe's local world: a character-level tokenizer, small Llama-shaped configs and
synthetic tasks, all built on the machine so that nothing is downloaded."""
