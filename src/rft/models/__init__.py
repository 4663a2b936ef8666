"""Models: load a causal LM + tokenizer from a local directory; create the embedded tiny model."""
