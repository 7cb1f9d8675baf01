"""The language model: GGUF conversion and validated weights, the tokenizer, the Flax NNX
Llama module. Only the inference container (and the train function) import this package."""
