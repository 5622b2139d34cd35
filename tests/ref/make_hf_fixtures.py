#!/usr/bin/python3
"""Writes tests/fixtures/hf/: tiny Hugging Face model folders for BERT, GPT-2 and LLaMA with
PyTorch reference outputs (tests/ref/hf_models.py), dense and magnitude-pruned N:M.

  /usr/bin/python3 tests/ref/make_hf_fixtures.py [OUTDIR]

Per fixture folder NAME/:
  config.json                 the keys transformers' save_pretrained writes for that model class
  model.safetensors           or model-0000i-of-0000n.safetensors + model.safetensors.index.json
  input_ids.npy               int64 (B, T); BERT also attention_mask.npy / token_type_ids.npy
  logits.npy                  float32: (B, T, vocab) causal LM, (B, labels) sequence classification
  last_hidden_state.npy       float32 (B, T, D) for the bare models (BertModel, GPT2Model);
                              BertModel also pooler_output.npy (B, D)
  generate.npy                int64 (B, T + G): greedy continuation (decoders with an LM head)
and OUTDIR/manifest.json: per fixture the family, pattern, dtype, the expected parsed config and,
per tensor, its shape and the CRC-32 of its values as little-endian f32 after decoding the stored
dtype: tests/io/test_hf_folder.c checks every tensor against it.

F16 / BF16 fixtures: the weights are rounded to the stored dtype first and the reference runs in
f32 on the rounded values (what a reader that widens to f32 computes). N:M fixtures: every
block linear pruned along its input dimension with vit_ref.nm_prune_ (the project's mask rule:
top-N |w| per group of M consecutive inputs, ties to the lower index); for GPT-2's Conv1D the
input dimension is axis 0 of the stored [in, out] weight.
"""
import json
import os
import sys
import zlib

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_models import (bert_forward, bert_linears, gpt2_forward, gpt2_linears,  # noqa: E402
                       greedy_generate, llama_forward, llama_linears)
from vit_ref import SAFETENSORS_DTYPES, nm_prune_, write_safetensors  # noqa: E402

FIXTURES = [
    # BertForSequenceClassification, odd head count, padding mask, token types, 3 labels
    dict(name="bert_cls_pad", family="bert", B=3, T=9, lengths=[9, 6, 3],
         cfg=dict(vocab_size=101, hidden_size=24, num_hidden_layers=2, num_attention_heads=3,
                  intermediate_size=48, max_position_embeddings=40, type_vocab_size=2,
                  layer_norm_eps=1e-12, num_labels=3)),
    dict(name="bert_cls_pad_2to8", family="bert", pattern="2:8", same_as="bert_cls_pad"),
    # BertModel (names without the bert. prefix), 5 heads, T > 64, F16 weights
    dict(name="bert_long_f16", family="bert", bare=True, B=1, T=70, dtype="F16",
         cfg=dict(vocab_size=53, hidden_size=40, num_hidden_layers=1, num_attention_heads=5,
                  intermediate_size=80, max_position_embeddings=72, type_vocab_size=2,
                  layer_norm_eps=1e-12)),
    # GPT2LMHeadModel saved by save_pretrained: transformer. prefix, lm_head tied (not stored)
    dict(name="gpt2_lm", family="gpt2", B=2, T=7, G=5,
         cfg=dict(vocab_size=67, n_embd=24, n_layer=2, n_head=3, n_positions=32,
                  layer_norm_epsilon=1e-5)),
    dict(name="gpt2_lm_2to4", family="gpt2", pattern="2:4", same_as="gpt2_lm"),
    # the openai-community/gpt2 layout: LM head model, names without transformer.; T > 64, BF16
    dict(name="gpt2_long_bf16", family="gpt2", prefix="", B=1, T=66, G=3, dtype="BF16",
         cfg=dict(vocab_size=50, n_embd=16, n_layer=1, n_head=1, n_positions=72, n_inner=40,
                  layer_norm_epsilon=1e-5)),
    # GPT2Model, one token, 5 heads of 4
    dict(name="gpt2_model_t1", family="gpt2", bare=True, prefix="", B=3, T=1,
         cfg=dict(vocab_size=37, n_embd=20, n_layer=2, n_head=5, n_positions=16,
                  layer_norm_epsilon=1e-5)),
    # LlamaForCausalLM, GQA 6 heads / 2 kv heads, untied head
    dict(name="llama_gqa6x2", family="llama", B=2, T=5, G=6,
         cfg=dict(vocab_size=83, hidden_size=48, num_hidden_layers=2, num_attention_heads=6,
                  num_key_value_heads=2, intermediate_size=64, max_position_embeddings=64,
                  rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False)),
    dict(name="llama_gqa6x2_sharded", family="llama", shards=2, same_as="llama_gqa6x2", same_weights=True),
    dict(name="llama_gqa6x2_2to8", family="llama", pattern="2:8", same_as="llama_gqa6x2"),
    # GQA 4 heads / 1 kv head, tied head, rope_theta 5e5, T > 64, BF16
    dict(name="llama_gqa4x1_tied_bf16", family="llama", B=1, T=67, G=4, dtype="BF16",
         cfg=dict(vocab_size=75, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=1, intermediate_size=56, max_position_embeddings=128,
                  rms_norm_eps=1e-5, rope_theta=500000.0, tie_word_embeddings=True)),
    # plain multi-head (5 heads = 5 kv heads), one token, F16
    dict(name="llama_mha5_t1_f16", family="llama", B=2, T=1, G=5, dtype="F16",
         cfg=dict(vocab_size=37, hidden_size=40, num_hidden_layers=1, num_attention_heads=5,
                  num_key_value_heads=5, intermediate_size=72, max_position_embeddings=32,
                  rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False)),
]


# ---- config.json as save_pretrained writes it ------------------------------------------------

def hf_config(fx):
    c, fam = dict(fx["cfg"]), fx["family"]
    if fam == "bert":
        labels = c.pop("num_labels", None)
        out = dict(architectures=["BertModel" if fx.get("bare") else "BertForSequenceClassification"],
                   model_type="bert", hidden_act="gelu", hidden_dropout_prob=0.1,
                   attention_probs_dropout_prob=0.1, initializer_range=0.02, pad_token_id=0,
                   position_embedding_type="absolute", use_cache=True, classifier_dropout=None, **c)
        if labels:  # PretrainedConfig.to_dict writes id2label/label2id, not num_labels
            out["id2label"] = {str(i): f"LABEL_{i}" for i in range(labels)}
            out["label2id"] = {f"LABEL_{i}": i for i in range(labels)}
    elif fam == "gpt2":
        out = dict(architectures=["GPT2Model" if fx.get("bare") else "GPT2LMHeadModel"],
                   model_type="gpt2", activation_function="gelu_new", n_ctx=c["n_positions"],
                   n_inner=c.pop("n_inner", None), attn_pdrop=0.1, embd_pdrop=0.1, resid_pdrop=0.1,
                   bos_token_id=0, eos_token_id=0, initializer_range=0.02, scale_attn_weights=True,
                   use_cache=True, **c)
    else:
        out = dict(architectures=["LlamaForCausalLM"], model_type="llama", hidden_act="silu",
                   attention_bias=False, attention_dropout=0.0, mlp_bias=False, rope_scaling=None,
                   bos_token_id=1, eos_token_id=2, initializer_range=0.02, pretraining_tp=1,
                   use_cache=True, **c)
    out["torch_dtype"] = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[fx.get("dtype", "F32")]
    out["transformers_version"] = "4.46.0"
    return out


def expected_config(fx, cfg):
    """What nmf_hf_config must hold after parsing config.json (GPT-2's n_* mapped, defaults filled)."""
    fam = fx["family"]
    if fam == "gpt2":
        D = cfg["n_embd"]
        return dict(model_type="gpt2", hidden_size=D, num_hidden_layers=cfg["n_layer"],
                    num_attention_heads=cfg["n_head"], num_key_value_heads=cfg["n_head"],
                    intermediate_size=cfg.get("n_inner") or 4 * D, vocab_size=cfg["vocab_size"],
                    max_position_embeddings=cfg["n_positions"], type_vocab_size=0,
                    norm_eps=cfg["layer_norm_epsilon"], rope_theta=0.0, tie_word_embeddings=1,
                    hidden_act="gelu_new", num_labels=2)
    e = dict(model_type=fam, hidden_size=cfg["hidden_size"], num_hidden_layers=cfg["num_hidden_layers"],
             num_attention_heads=cfg["num_attention_heads"],
             num_key_value_heads=cfg.get("num_key_value_heads", cfg["num_attention_heads"]),
             intermediate_size=cfg["intermediate_size"], vocab_size=cfg["vocab_size"],
             max_position_embeddings=cfg["max_position_embeddings"])
    if fam == "bert":
        e.update(type_vocab_size=cfg["type_vocab_size"], norm_eps=cfg["layer_norm_eps"], rope_theta=0.0,
                 tie_word_embeddings=1, hidden_act="gelu", num_labels=cfg.get("num_labels", 2))
    else:
        e.update(type_vocab_size=0, norm_eps=cfg["rms_norm_eps"], rope_theta=cfg["rope_theta"],
                 tie_word_embeddings=int(cfg["tie_word_embeddings"]), hidden_act="silu", num_labels=2)
    return e


# ---- weights ---------------------------------------------------------------------------------

def random_params(fx, gen):
    """HF-named parameters in state_dict order, sized so that attention is far from uniform and
    logits are O(1)."""
    c, fam = fx["cfg"], fx["family"]

    def w(*shape, fan_in=None):
        fan = fan_in or shape[-1]
        return torch.randn(*shape, generator=gen) * (1.5 / fan ** 0.5)

    def vec(n, scale=0.1, mean=0.0):
        return mean + scale * torch.randn(n, generator=gen)

    def emb(*shape):
        return torch.randn(*shape, generator=gen) * 0.8

    p = {}
    if fam == "bert":
        pre = "" if fx.get("bare") else "bert."
        D, I = c["hidden_size"], c["intermediate_size"]
        p[pre + "embeddings.word_embeddings.weight"] = emb(c["vocab_size"], D)
        p[pre + "embeddings.position_embeddings.weight"] = emb(c["max_position_embeddings"], D)
        p[pre + "embeddings.token_type_embeddings.weight"] = emb(c["type_vocab_size"], D)
        p[pre + "embeddings.LayerNorm.weight"] = vec(D, 0.2, 1.0)
        p[pre + "embeddings.LayerNorm.bias"] = vec(D)
        for i in range(c["num_hidden_layers"]):
            L = f"{pre}encoder.layer.{i}."
            for s in ("query", "key", "value"):
                p[L + f"attention.self.{s}.weight"] = w(D, D)
                p[L + f"attention.self.{s}.bias"] = vec(D)
            p[L + "attention.output.dense.weight"] = w(D, D)
            p[L + "attention.output.dense.bias"] = vec(D)
            p[L + "attention.output.LayerNorm.weight"] = vec(D, 0.2, 1.0)
            p[L + "attention.output.LayerNorm.bias"] = vec(D)
            p[L + "intermediate.dense.weight"] = w(I, D)
            p[L + "intermediate.dense.bias"] = vec(I)
            p[L + "output.dense.weight"] = w(D, I)
            p[L + "output.dense.bias"] = vec(D)
            p[L + "output.LayerNorm.weight"] = vec(D, 0.2, 1.0)
            p[L + "output.LayerNorm.bias"] = vec(D)
        p[pre + "pooler.dense.weight"] = w(D, D)
        p[pre + "pooler.dense.bias"] = vec(D)
        if not fx.get("bare"):
            p["classifier.weight"] = w(c["num_labels"], D)
            p["classifier.bias"] = vec(c["num_labels"])
    elif fam == "gpt2":
        pre = fx.get("prefix", "transformer.")
        D = c["n_embd"]
        I = c.get("n_inner") or 4 * D
        p[pre + "wte.weight"] = emb(c["vocab_size"], D)
        p[pre + "wpe.weight"] = emb(c["n_positions"], D)
        for i in range(c["n_layer"]):
            L = f"{pre}h.{i}."
            p[L + "ln_1.weight"], p[L + "ln_1.bias"] = vec(D, 0.2, 1.0), vec(D)
            p[L + "attn.c_attn.weight"] = w(D, 3 * D, fan_in=D)  # Conv1D: [in, out]
            p[L + "attn.c_attn.bias"] = vec(3 * D)
            p[L + "attn.c_proj.weight"] = w(D, D, fan_in=D)
            p[L + "attn.c_proj.bias"] = vec(D)
            p[L + "ln_2.weight"], p[L + "ln_2.bias"] = vec(D, 0.2, 1.0), vec(D)
            p[L + "mlp.c_fc.weight"] = w(D, I, fan_in=D)
            p[L + "mlp.c_fc.bias"] = vec(I)
            p[L + "mlp.c_proj.weight"] = w(I, D, fan_in=I)
            p[L + "mlp.c_proj.bias"] = vec(D)
        p[pre + "ln_f.weight"], p[pre + "ln_f.bias"] = vec(D, 0.2, 1.0), vec(D)
    else:
        D, I, H = c["hidden_size"], c["intermediate_size"], c["num_attention_heads"]
        kvd = D // H * c["num_key_value_heads"]
        p["model.embed_tokens.weight"] = emb(c["vocab_size"], D)
        for i in range(c["num_hidden_layers"]):
            L = f"model.layers.{i}."
            p[L + "self_attn.q_proj.weight"] = w(D, D)
            p[L + "self_attn.k_proj.weight"] = w(kvd, D)
            p[L + "self_attn.v_proj.weight"] = w(kvd, D)
            p[L + "self_attn.o_proj.weight"] = w(D, D)
            p[L + "mlp.gate_proj.weight"] = w(I, D)
            p[L + "mlp.up_proj.weight"] = w(I, D)
            p[L + "mlp.down_proj.weight"] = w(D, I)
            p[L + "input_layernorm.weight"] = vec(D, 0.2, 1.0)
            p[L + "post_attention_layernorm.weight"] = vec(D, 0.2, 1.0)
        p["model.norm.weight"] = vec(D, 0.2, 1.0)
        if not c["tie_word_embeddings"]:
            p["lm_head.weight"] = w(c["vocab_size"], D)
    return p


def prune(fx, p, pattern):
    n, m = map(int, pattern.split(":"))
    fam, c = fx["family"], fx["cfg"]
    if fam == "bert":
        names = bert_linears(c, "" if fx.get("bare") else "bert.")
    elif fam == "gpt2":
        names = gpt2_linears(c, fx.get("prefix", "transformer."))
    else:
        names = llama_linears(c)
    for name in names:
        t = p[name] if fam != "gpt2" else p[name].t()  # rows = outputs, columns = inputs
        nm_prune_(t, n, m)
        groups = t.reshape(t.shape[0], -1, m)
        assert int((groups != 0).sum(-1).max()) <= n, name


# ---- forward per fixture ---------------------------------------------------------------------

def run(fx, p, inputs):
    """Returns {output file stem: tensor} and a function ids -> LM logits (None for encoders)."""
    c, fam = fx["cfg"], fx["family"]
    if fam == "bert":
        pre = "" if fx.get("bare") else "bert."
        h, pooled, logits = bert_forward(c, p, inputs["input_ids"], inputs.get("token_type_ids"),
                                         inputs.get("attention_mask"), prefix=pre)
        if fx.get("bare"):
            return {"last_hidden_state": h, "pooler_output": pooled}, None
        return {"logits": logits}, None
    if fam == "gpt2":
        pre = fx.get("prefix", "transformer.")
        h, logits = gpt2_forward(c, p, inputs["input_ids"], prefix=pre)
        if fx.get("bare"):
            return {"last_hidden_state": h}, None
        return {"logits": logits}, lambda ids: gpt2_forward(c, p, ids, prefix=pre)[1]
    h, logits = llama_forward(c, p, inputs["input_ids"])
    return {"logits": logits}, lambda ids: llama_forward(c, p, ids)[1]


def self_checks(fx, p, inputs, outs, lm):
    """Properties of HF's semantics the references must have (cheap, on every fixture)."""
    ids = inputs["input_ids"]
    if lm is not None and ids.shape[1] > 1:  # causal: a later token never changes earlier logits
        other = ids.clone()
        other[:, -1] = (other[:, -1] + 1) % fx["cfg"]["vocab_size"]
        assert torch.equal(lm(other)[:, :-1], outs["logits"][:, :-1]), fx["name"]
    if "attention_mask" in inputs:  # padded tokens are invisible to the classification
        other = ids.clone()
        other[inputs["attention_mask"] == 0] = 1
        _, _, logits = bert_forward(fx["cfg"], p, other, inputs.get("token_type_ids"),
                                    inputs["attention_mask"])
        assert torch.allclose(logits, outs["logits"], atol=1e-6), fx["name"]


# ---- writing ---------------------------------------------------------------------------------

def crc_f32(t):
    return zlib.crc32(t.detach().contiguous().to(torch.float32).numpy().astype("<f4").tobytes())


def write_weights(folder, p, dtype, shards):
    meta = {"format": "pt"}  # what save_pretrained puts in every safetensors file
    if shards == 1:
        write_safetensors(os.path.join(folder, "model.safetensors"), p, meta, dtype)
        return
    names = list(p)
    per = (len(names) + shards - 1) // shards
    weight_map, total = {}, 0
    for s in range(shards):
        fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: p[n] for n in names[s * per:(s + 1) * per]}
        total += write_safetensors(os.path.join(folder, fname), part, meta, dtype)
        weight_map.update({n: fname for n in part})
    # modeling_utils.save_pretrained: {"metadata": {"total_size": bytes}, "weight_map": {...}}
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))},
                  f, indent=2)


def make_inputs(fx, gen):
    c = fx["cfg"]
    ids = torch.randint(0, c["vocab_size"], (fx["B"], fx["T"]), generator=gen)
    inputs = {"input_ids": ids}
    if "lengths" in fx:
        mask = torch.zeros(fx["B"], fx["T"], dtype=torch.int64)
        for b, n in enumerate(fx["lengths"]):
            mask[b, :n] = 1
        ids[mask == 0] = 0  # [PAD]
        inputs["attention_mask"] = mask
        tt = torch.zeros_like(ids)  # second segment: the last two real tokens
        for b, n in enumerate(fx["lengths"]):
            tt[b, max(1, n - 2):n] = 1
        inputs["token_type_ids"] = tt
    return inputs


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "hf")
    os.makedirs(out, exist_ok=True)
    made, manifest = {}, []
    for i, spec in enumerate(FIXTURES):
        fx = dict(spec)
        gen = torch.Generator().manual_seed(1000 + i)
        if "same_as" in fx:  # same config, weights and inputs as an earlier fixture
            base = made[fx["same_as"]]
            for k in ("cfg", "bare", "prefix", "B", "T", "G", "lengths", "dtype"):
                if k in base["fx"] and k not in fx:
                    fx[k] = base["fx"][k]
            p = {k: v.clone() for k, v in base["p"].items()}
            inputs = base["inputs"]
        else:
            p = random_params(fx, gen)
            inputs = make_inputs(fx, gen)
        if fx.get("pattern"):
            prune(fx, p, fx["pattern"])
        dtype = fx.get("dtype", "F32")
        tdt = SAFETENSORS_DTYPES[dtype][0]
        p = {k: v.to(tdt).to(torch.float32) for k, v in p.items()}  # what the reader will see
        with torch.no_grad():
            outs, lm = run(fx, p, inputs)
            self_checks(fx, p, inputs, outs, lm)
            gen_seq = None
            if lm and fx.get("G"):
                gen_seq, gap = greedy_generate(lm, inputs["input_ids"], fx["G"])
                assert gap > 1e-3, f"{fx['name']}: greedy choice within {gap} of a tie"
        made[fx["name"]] = dict(fx=fx, p=p, inputs=inputs, outs=outs)

        folder = os.path.join(out, fx["name"])
        os.makedirs(folder, exist_ok=True)
        for f in os.listdir(folder):
            os.unlink(os.path.join(folder, f))
        cfg = hf_config(fx)
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
        write_weights(folder, p, dtype, fx.get("shards", 1))
        for k, v in inputs.items():
            np.save(os.path.join(folder, k + ".npy"), v.numpy().astype(np.int64))
        for k, v in outs.items():
            np.save(os.path.join(folder, k + ".npy"), v.numpy().astype(np.float32))
        if gen_seq is not None:
            np.save(os.path.join(folder, "generate.npy"), gen_seq.numpy().astype(np.int64))
        if fx.get("same_weights"):  # sharded copy: must equal its source exactly
            src = made[fx["same_as"]]
            assert all(torch.equal(src["p"][k], p[k]) for k in p)
            for k in outs:
                assert torch.equal(src["outs"][k], outs[k])
        manifest.append(dict(
            name=fx["name"], family=fx["family"], pattern=fx.get("pattern"), dtype=dtype,
            shards=fx.get("shards", 1), same_weights_as=fx["same_as"] if fx.get("same_weights") else None,
            config=expected_config(fx, fx["cfg"]),
            outputs={k: list(v.shape) for k, v in outs.items()},
            generate=list(gen_seq.shape) if gen_seq is not None else None,
            tensors=[[k, list(v.shape), crc_f32(v)] for k, v in p.items()]))
        big = max(float(v.abs().max()) for v in outs.values())
        print(f"{fx['name']}: {fx['family']} {fx.get('pattern') or 'dense'} {dtype}, "
              f"{len(p)} tensors, {sum(v.numel() for v in p.values())} weights, "
              f"outputs {', '.join(f'{k}{list(v.shape)}' for k, v in outs.items())}, |max| {big:.3f}"
              + (f", generate {list(gen_seq.shape)}" if gen_seq is not None else ""))
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"fixtures": manifest}, f, indent=1)


if __name__ == "__main__":
    main()
