#!/usr/bin/python3
"""Writes a Hugging Face model folder with random weights at a real model's size, for memory and
speed figures (docs/PERFORMANCE.md): config.json as save_pretrained writes it and the weights in
one or more safetensors shards, built by the same code as the test fixtures
(tests/ref/make_hf_fixtures.py: hf_config, random_params, write_weights).

  /usr/bin/python3 scripts/make_random_hf.py OUTDIR FAMILY 'CONFIG_JSON' [--shards N] [--dtype D]

FAMILY is bert, gpt2 or llama; CONFIG_JSON holds the config.json keys of that family's fixtures
(for llama: vocab_size, hidden_size, num_hidden_layers, num_attention_heads, num_key_value_heads,
intermediate_size, max_position_embeddings, rms_norm_eps, rope_theta, tie_word_embeddings);
D is F32, F16 or BF16 (default BF16). Python holds the model in f32 while writing it.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
from make_hf_fixtures import hf_config, random_params, write_weights  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("family", choices=["bert", "gpt2", "llama"])
    ap.add_argument("config")
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--dtype", default="BF16", choices=["F32", "F16", "BF16"])
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    fx = dict(family=a.family, cfg=json.loads(a.config), dtype=a.dtype)
    os.makedirs(a.out, exist_ok=True)
    p = random_params(fx, torch.Generator().manual_seed(a.seed))
    write_weights(a.out, p, a.dtype, a.shards)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(hf_config(fx), f, indent=2)
    print(f"{a.out}: {sum(t.numel() for t in p.values())} parameters, {a.shards} shard(s), {a.dtype}")


if __name__ == "__main__":
    main()
