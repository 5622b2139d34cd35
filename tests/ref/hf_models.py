"""Small PyTorch implementations of Hugging Face's BERT, GPT-2 and LLaMA, for nmformer's fixtures.

`transformers` is not installed (tests/ref uses Debian's python3-torch only), so each forward is
written out here, line by line after the module of transformers that it mirrors (the comments
name the class in transformers/models/{bert,gpt2,llama}/modeling_*.py). Every model is a function
of (config dict, {HF tensor name: tensor}, inputs): the names are exactly the ones in a
`save_pretrained` folder, so the same dict is what gets written to model.safetensors.

Semantics kept from HF on purpose (the C forwards must match them):
  BERT   word + position + token-type embeddings, LayerNorm(layer_norm_eps); post-LN blocks;
         exact (erf) GELU; additive padding mask (1 - mask) * finfo.min; pooler tanh(dense(x[:,0]))
         and classifier on the pooled output (BertForSequenceClassification).
  GPT-2  Conv1D weights stored [in, out] (y = x @ W + b); pre-LN; gelu_new (tanh); scores / sqrt(hd);
         causal mask by torch.where(.., finfo.min); ln_f; lm_head tied to wte (no bias).
  LLaMA  RMSNorm in f32 (x * rsqrt(mean(x^2) + eps) * w); RoPE in rotate_half layout (the two
         halves of a head, not interleaved pairs) with inv_freq = theta^(-2i/hd); GQA by repeat_kv
         (kv head j serves query heads j*rep .. j*rep + rep - 1); SwiGLU down(silu(gate) * up);
         no biases; lm_head tied or not.
"""
import math

import torch
import torch.nn.functional as F

NEG = torch.finfo(torch.float32).min  # HF's mask value for f32 (modeling_utils / _attn)


def linear(x, p, name, bias=True):
    """nn.Linear: weight [out, in], y = x W^T + b."""
    return F.linear(x, p[name + ".weight"], p.get(name + ".bias") if bias else None)


def conv1d(x, p, name):
    """transformers.pytorch_utils.Conv1D.forward: weight [in, out] (nx, nf), torch.addmm(bias, x, W)."""
    return x @ p[name + ".weight"] + p[name + ".bias"]


def layer_norm(x, p, name, eps):
    return F.layer_norm(x, x.shape[-1:], p[name + ".weight"], p[name + ".bias"], eps)


def split_heads(x, heads):  # (B, T, heads*hd) -> (B, heads, T, hd)
    B, T, _ = x.shape
    return x.view(B, T, heads, -1).permute(0, 2, 1, 3)


def merge_heads(x):  # (B, heads, T, hd) -> (B, T, heads*hd)
    B, H, T, hd = x.shape
    return x.permute(0, 2, 1, 3).reshape(B, T, H * hd)


def causal_mask(T):  # (T, T) bool, True where key position <= query position
    return torch.tril(torch.ones(T, T, dtype=torch.bool))


# ---------------------------------------------------------------------------------------------
# BERT (modeling_bert.py)

def bert_forward(cfg, p, ids, token_type_ids=None, attention_mask=None, prefix="bert."):
    """BertModel (+ BertForSequenceClassification when 'classifier.weight' is in p).
    Returns (last_hidden_state (B,T,D), pooler_output (B,D) or None, logits (B,labels) or None)."""
    g = {k[len(prefix):]: v for k, v in p.items() if k.startswith(prefix)}
    B, T = ids.shape
    H, eps = cfg["num_attention_heads"], cfg.get("layer_norm_eps", 1e-12)
    hd = cfg["hidden_size"] // H
    if token_type_ids is None:  # BertModel.forward: buffered token_type_ids are zeros
        token_type_ids = torch.zeros_like(ids)
    # BertEmbeddings.forward: inputs_embeds + token_type_embeddings, then += position_embeddings
    # (position_embedding_type "absolute", position_ids = arange(T)), LayerNorm, dropout (eval: none)
    x = g["embeddings.word_embeddings.weight"][ids] + g["embeddings.token_type_embeddings.weight"][token_type_ids]
    x = x + g["embeddings.position_embeddings.weight"][torch.arange(T)]
    x = layer_norm(x, g, "embeddings.LayerNorm", eps)
    # ModuleUtilsMixin.get_extended_attention_mask: (B,1,1,T), (1 - mask) * finfo(dtype).min
    ext = 0.0
    if attention_mask is not None:
        ext = (1.0 - attention_mask[:, None, None, :].to(torch.float32)) * NEG
    for i in range(cfg["num_hidden_layers"]):
        L = f"encoder.layer.{i}."
        # BertSelfAttention.forward: separate query/key/value Linears, scores / sqrt(head size),
        # + extended mask, softmax over keys, probs @ value, heads merged back
        q = split_heads(linear(x, g, L + "attention.self.query"), H)
        k = split_heads(linear(x, g, L + "attention.self.key"), H)
        v = split_heads(linear(x, g, L + "attention.self.value"), H)
        scores = q @ k.transpose(-1, -2) / math.sqrt(hd) + ext
        ctx = merge_heads(torch.softmax(scores, dim=-1) @ v)
        # BertSelfOutput.forward: LayerNorm(dense(ctx) + input)  (post-LN)
        a = layer_norm(linear(ctx, g, L + "attention.output.dense") + x, g, L + "attention.output.LayerNorm", eps)
        # BertIntermediate: ACT2FN["gelu"] = exact erf GELU; BertOutput: LayerNorm(dense(h) + a)
        h = F.gelu(linear(a, g, L + "intermediate.dense"))
        x = layer_norm(linear(h, g, L + "output.dense") + a, g, L + "output.LayerNorm", eps)
    pooled = None
    if "pooler.dense.weight" in g:  # BertPooler: tanh(dense(first token))
        pooled = torch.tanh(linear(x[:, 0], g, "pooler.dense"))
    logits = None
    if "classifier.weight" in p:  # BertForSequenceClassification: classifier(dropout(pooled))
        logits = linear(pooled, p, "classifier")
    return x, pooled, logits


def bert_linears(cfg, prefix="bert."):
    """N:M-eligible weights (stored [out, in]); embeddings, norms, pooler, classifier stay dense."""
    names = []
    for i in range(cfg["num_hidden_layers"]):
        L = f"{prefix}encoder.layer.{i}."
        names += [L + s + ".weight" for s in ("attention.self.query", "attention.self.key",
                                              "attention.self.value", "attention.output.dense",
                                              "intermediate.dense", "output.dense")]
    return names


# ---------------------------------------------------------------------------------------------
# GPT-2 (modeling_gpt2.py)

def gelu_new(x):
    """activations.NewGELUActivation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def gpt2_forward(cfg, p, ids, prefix="transformer."):
    """GPT2Model (+ GPT2LMHeadModel's tied lm_head). Returns (last_hidden_state, logits)."""
    g = {k[len(prefix):]: v for k, v in p.items() if k.startswith(prefix)}
    B, T = ids.shape
    H, eps = cfg["n_head"], cfg.get("layer_norm_epsilon", 1e-5)
    # GPT2Model.forward: inputs_embeds = wte(ids), position_embeds = wpe(arange(T))
    x = g["wte.weight"][ids] + g["wpe.weight"][torch.arange(T)]
    keep = causal_mask(T)
    for i in range(cfg["n_layer"]):
        L = f"h.{i}."
        # GPT2Block.forward: pre-LN; ln_1 -> attn -> residual; ln_2 -> mlp -> residual
        h = layer_norm(x, g, L + "ln_1", eps)
        # GPT2Attention.forward: c_attn (Conv1D) then .split(embed_dim, dim=2) into q, k, v
        q, k, v = conv1d(h, g, L + "attn.c_attn").split(cfg["n_embd"], dim=2)
        q, k, v = split_heads(q, H), split_heads(k, H), split_heads(v, H)
        # GPT2Attention._attn: q @ k^T / value.size(-1) ** 0.5 (scale_attn_weights), causal
        # positions kept by torch.where(causal_mask, w, finfo.min), softmax, @ v
        w = q @ k.transpose(-1, -2) / (float(v.size(-1)) ** 0.5)
        w = torch.where(keep, w, torch.tensor(NEG))
        a = merge_heads(torch.softmax(w, dim=-1) @ v)
        x = x + conv1d(a, g, L + "attn.c_proj")
        # GPT2MLP: c_proj(act(c_fc(h))), act = ACT2FN["gelu_new"]
        h = layer_norm(x, g, L + "ln_2", eps)
        x = x + conv1d(gelu_new(conv1d(h, g, L + "mlp.c_fc")), g, L + "mlp.c_proj")
    x = layer_norm(x, g, "ln_f", eps)
    # GPT2LMHeadModel: lm_head = Linear(n_embd, vocab, bias=False), weight tied to wte
    logits = x @ g["wte.weight"].t()
    return x, logits


def gpt2_linears(cfg, prefix="transformer."):
    """N:M-eligible Conv1D weights, stored [in, out]: groups run along axis 0."""
    names = []
    for i in range(cfg["n_layer"]):
        L = f"{prefix}h.{i}."
        names += [L + s + ".weight" for s in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")]
    return names


# ---------------------------------------------------------------------------------------------
# LLaMA (modeling_llama.py)

def rms_norm(x, w, eps):
    """LlamaRMSNorm.forward: in f32, x * rsqrt(mean(x^2, -1) + eps), then weight * x."""
    xf = x.to(torch.float32)
    var = xf.pow(2).mean(-1, keepdim=True)
    return w * (xf * torch.rsqrt(var + eps)).to(x.dtype)


def rope_cos_sin(T, hd, theta):
    """LlamaRotaryEmbedding (rope_type "default"): inv_freq = 1 / theta^(arange(0, hd, 2) / hd),
    freqs = positions x inv_freq, emb = cat(freqs, freqs): cos, sin of shape (T, hd)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    freqs = torch.arange(T, dtype=torch.float32)[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    """modeling_llama.rotate_half: (x1, x2) halves of the last axis -> (-x2, x1)."""
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def repeat_kv(x, rep):
    """modeling_llama.repeat_kv: (B, kv, T, hd) -> (B, kv*rep, T, hd), each kv head repeated rep
    times in place (query head h reads kv head h // rep)."""
    B, KV, T, hd = x.shape
    return x[:, :, None].expand(B, KV, rep, T, hd).reshape(B, KV * rep, T, hd)


def llama_forward(cfg, p, ids):
    """LlamaForCausalLM. Returns (last_hidden_state after the final norm, logits)."""
    B, T = ids.shape
    D, H = cfg["hidden_size"], cfg["num_attention_heads"]
    KV = cfg.get("num_key_value_heads") or H  # LlamaConfig: None -> num_attention_heads
    hd, eps = D // H, cfg.get("rms_norm_eps", 1e-6)
    cos, sin = rope_cos_sin(T, hd, cfg.get("rope_theta", 10000.0))
    keep = causal_mask(T)
    x = p["model.embed_tokens.weight"][ids]
    for i in range(cfg["num_hidden_layers"]):
        L = f"model.layers.{i}."
        # LlamaDecoderLayer.forward: x + attn(input_layernorm(x)), then x + mlp(post_attention_layernorm(x))
        h = rms_norm(x, p[L + "input_layernorm.weight"], eps)
        # LlamaAttention.forward: q/k/v_proj (no bias: attention_bias False), view (B,T,-1,hd).transpose(1,2)
        q = split_heads(linear(h, p, L + "self_attn.q_proj", bias=False), H)
        k = split_heads(linear(h, p, L + "self_attn.k_proj", bias=False), KV)
        v = split_heads(linear(h, p, L + "self_attn.v_proj", bias=False), KV)
        # apply_rotary_pos_emb: q * cos + rotate_half(q) * sin (and k)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        # eager_attention_forward: repeat_kv, q k^T * hd^-0.5 + causal mask, softmax in f32, @ v
        k, v = repeat_kv(k, H // KV), repeat_kv(v, H // KV)
        w = q @ k.transpose(-1, -2) * hd ** -0.5
        w = w + torch.where(keep, torch.tensor(0.0), torch.tensor(NEG))
        a = merge_heads(torch.softmax(w, dim=-1, dtype=torch.float32) @ v)
        x = x + linear(a, p, L + "self_attn.o_proj", bias=False)
        # LlamaMLP.forward: down_proj(act_fn(gate_proj(x)) * up_proj(x)), act_fn = silu
        h = rms_norm(x, p[L + "post_attention_layernorm.weight"], eps)
        x = x + linear(F.silu(linear(h, p, L + "mlp.gate_proj", bias=False)) *
                       linear(h, p, L + "mlp.up_proj", bias=False), p, L + "mlp.down_proj", bias=False)
    x = rms_norm(x, p["model.norm.weight"], eps)
    # LlamaForCausalLM: lm_head (no bias); tie_word_embeddings -> the same tensor as embed_tokens
    head = p["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings", False) else p["lm_head.weight"]
    return x, x @ head.t()


def llama_linears(cfg):
    names = []
    for i in range(cfg["num_hidden_layers"]):
        L = f"model.layers.{i}."
        names += [L + s + ".weight" for s in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                              "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj",
                                              "mlp.down_proj")]
    return names


# ---------------------------------------------------------------------------------------------

def greedy_generate(logits_fn, ids, new_tokens):
    """GenerationMixin greedy search without a cache: each step re-runs the whole sequence and
    appends argmax of the last position's logits (torch.argmax: the first maximum on ties).
    Returns int64 (B, T + new_tokens) and the smallest gap between the best and the second-best
    logit over all steps (a fixture is only useful when an f32 rounding cannot flip a choice)."""
    seq, gap = ids.clone(), float("inf")
    for _ in range(new_tokens):
        last = logits_fn(seq)[:, -1, :]
        top2 = torch.topk(last, 2, dim=-1).values
        gap = min(gap, float((top2[:, 0] - top2[:, 1]).min()))
        seq = torch.cat([seq, torch.argmax(last, dim=-1)[:, None]], dim=1)
    return seq, gap
