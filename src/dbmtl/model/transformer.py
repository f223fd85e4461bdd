"""One readable transformer (after nanoGPT) for both model kinds: causal rows (the decoder kind, and the
LM task) with a KV cache for free-running decoding, and bidirectional rows (the encoder kind).

Attention is torch's scaled_dot_product_attention, so the fused flash / memory-efficient kernels are used
wherever the hardware has them. Positions enter as rotary embeddings (RoPE) on queries and keys, so an
attention score depends on the distance between two positions; each token also gets a segment embedding
(`n_segments` of them; the row layouts in dbmtl.data.layouts say which is which). With their aligned positions, the label
slot k and residue k are at distance 0, and "look at my residue and its neighbours" is one pattern shared
by every position. Batches may be left-padded for decoding: `valid` marks real tokens; causality follows
the column order.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ModelConfig


class KVCache:
    """Pre-allocated keys and values for every layer, plus which cached slots are real tokens."""

    def __init__(self, cfg: ModelConfig, batch: int, max_len: int, dtype=torch.float32, device=None):
        hd = cfg.n_embd // cfg.n_head
        shape = (cfg.n_layer, batch, cfg.n_head, max_len, hd)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.valid = torch.zeros(batch, max_len, dtype=torch.bool, device=device)
        self.length = 0


def rotary(positions: torch.Tensor, head_dim: int, dtype: torch.dtype, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotary angles, (B, 1, T, head_dim/2)."""
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim))
    angles = positions[:, None, :, None].float() * inv_freq
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def blocked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
                      causal: bool = False, block_elements: int = 1 << 21) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + mask) v as plain matmuls over cache-sized blocks of (row, head, queries).

    The same function as scaled_dot_product_attention (no dropout). On CPUs with bfloat16 matmul units it
    is about twice as fast as torch's fused CPU kernel in bfloat16, which computes in float32 (measured in
    docs/performance.md): each block's scores (at most `block_elements`) stay in cache. Causal rows compute
    only the keys up to each query block's end. mask: boolean, True = attend, broadcastable to (B, H, T, S).
    """
    B, H, T, D = q.shape
    S = k.shape[2]
    q, k, v = (x.reshape(B * H, x.shape[2], D) for x in (q * D**-0.5, k, v))
    key_lengths = None
    if mask is not None and mask.shape[-2] == 1:  # key padding only: right padding is a length per row
        lengths = mask.reshape(B, S).sum(-1)
        if torch.equal(mask.reshape(B, S), torch.arange(S, device=q.device)[None, :] < lengths[:, None]):
            key_lengths, mask = lengths.tolist(), None
    if mask is not None:
        mask = mask.expand(B, H, T, S).reshape(B * H, T, S)
    out = torch.empty_like(q)
    q_block = min(T, 256)
    for i0 in range(0, T, q_block):
        i1 = min(T, i0 + q_block)
        keys = min(S, S - T + i1) if causal and mask is None else S  # causal: later keys are all masked
        slices = max(1, block_elements // ((i1 - i0) * keys))
        for g0 in range(0, B * H, slices):
            g1 = min(B * H, g0 + slices)
            scores = torch.matmul(q[g0:g1, i0:i1], k[g0:g1, :keys].transpose(1, 2))
            if key_lengths is not None:  # slices r*H .. r*H+H-1 are row r's heads
                for r in range(g0 // H, (g1 - 1) // H + 1):
                    if key_lengths[r] < keys:
                        scores[max(g0, r * H) - g0 : min(g1, r * H + H) - g0, :, key_lengths[r]:] = float("-inf")
            elif mask is not None:
                scores.masked_fill_(~mask[g0:g1, i0:i1, :keys], float("-inf"))
            elif causal and keys > i0 + S - T:
                qi = torch.arange(i0, i1, device=q.device)[:, None] + (S - T)
                scores.masked_fill_(torch.arange(keys, device=q.device)[None, :] > qi, float("-inf"))
            out[g0:g1, i0:i1] = torch.matmul(torch.softmax(scores, dim=-1), v[g0:g1, :keys])
    return out.view(B, H, T, D)


class SelfAttention(nn.Module):
    """attention: "sdpa" (torch's fused kernels; always used for training and cached decoding) or "blocked"
    (blocked_attention: set for bfloat16 inference on a CPU by dbmtl.prediction)."""

    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        self.n_head, self.layer = cfg.n_head, layer
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.dropout = cfg.dropout if cfg.attention_dropout is None else cfg.attention_dropout
        self.resid_drop = nn.Dropout(cfg.dropout)
        self.attention = "sdpa"

    def forward(self, x, mask, rope, cache: KVCache | None, causal: bool = True):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        q, k = apply_rotary(q, *rope), apply_rotary(k, *rope)
        if cache is not None:
            start = cache.length
            cache.k[self.layer, :, :, start : start + T] = k
            cache.v[self.layer, :, :, start : start + T] = v
            k = cache.k[self.layer, :, :, : start + T]
            v = cache.v[self.layer, :, :, : start + T]
        if self.attention == "blocked" and cache is None and not self.training:
            y = blocked_attention(q, k, v, mask, causal=mask is None and causal)
        else:
            y = F.scaled_dot_product_attention(
                q, k, v,
                attn_mask=mask,
                dropout_p=self.dropout if self.training else 0.0,
                is_causal=mask is None and causal,
            )
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_drop(self.proj(y))


class LocalConv(nn.Module):
    """Depthwise convolution over neighbouring positions, then a linear map (the convolution module of
    Conformer / ConvNeXt, reduced to its core). Padding is zeroed first, so a row's output does not depend
    on what it is batched with; causal rows look back only."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.kernel = cfg.conv_kernel
        self.ln = nn.LayerNorm(cfg.n_embd)
        self.depthwise = nn.Conv1d(cfg.n_embd, cfg.n_embd, cfg.conv_kernel, groups=cfg.n_embd)
        self.pointwise = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None, causal: bool) -> torch.Tensor:
        h = self.ln(x)
        if valid is not None:
            h = h * valid[..., None].to(h.dtype)
        left = self.kernel - 1 if causal else self.kernel // 2
        h = F.pad(h.transpose(1, 2), (left, self.kernel - 1 - left))
        h = self.depthwise(h).transpose(1, 2)
        return self.drop(self.pointwise(F.gelu(h)))


class Block(nn.Module):
    RESIDUAL_OUTPUTS = ("attn.proj", "mlp.2", "conv.pointwise")  # the layers that write into the residual stream

    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.n_embd)
        self.attn = SelfAttention(cfg, layer)
        self.conv = LocalConv(cfg) if cfg.conv_kernel else None
        self.ln2 = nn.LayerNorm(cfg.n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.n_embd, 4 * cfg.n_embd),
            nn.GELU(approximate="tanh"),
            nn.Linear(4 * cfg.n_embd, cfg.n_embd),
            nn.Dropout(cfg.dropout),
        )

    def forward(self, x, mask, rope, cache, causal, valid=None):
        x = x + self.attn(self.ln1(x), mask, rope, cache, causal)
        if self.conv is not None:
            x = x + self.conv(x, valid, causal)
        return x + self.mlp(self.ln2(x))

    def start_as_identity(self) -> None:
        """Zero what the block writes into the residual stream: it passes its input through unchanged
        until training moves those layers (a block added to a trained model)."""
        for name, p in self.named_parameters():
            if name.startswith(tuple(f"{layer}." for layer in self.RESIDUAL_OUTPUTS)):
                nn.init.zeros_(p)


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wse = nn.Embedding(cfg.n_segments, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        # per-feature attention scores over residues for per-protein answers (protein_pooling "attention")
        self.pool = nn.Linear(cfg.n_embd, cfg.n_embd) if cfg.protein_pooling == "attention" else None
        self.prefix = 2 if cfg.kind == "onepass" else 1  # columns before the residues: <CTRL>, or <LOC> <MS>
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.head.weight = self.wte.weight  # tied input / output embeddings
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith(tuple(f"{layer}.weight" for layer in Block.RESIDUAL_OUTPUTS)):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(
        self,
        tokens: torch.Tensor,
        positions: torch.Tensor | None = None,
        segments: torch.Tensor | None = None,
        valid: torch.Tensor | None = None,
        cache: KVCache | None = None,
        causal: bool = True,
        hidden: bool = False,
    ) -> torch.Tensor:
        """Logits (B, T, vocab). Without `valid` and `cache`, a plain causal pass over right-padded rows.
        causal=False attends both ways (encoder rows); then `valid` must mark padding, if any.
        hidden=True: the final states the output head reads (B, T, n_embd), after the last layer norm
        (the embeddings of `dbmtl embed`)."""
        B, T = tokens.shape
        start = cache.length if cache is not None else 0
        if positions is None:
            positions = torch.arange(start, start + T, device=tokens.device).expand(B, T)
        if positions.max() >= self.cfg.context:
            raise ValueError(f"sequence of {int(positions.max()) + 1} tokens exceeds the context {self.cfg.context}")
        mask = None
        if not causal:
            if cache is not None:
                raise ValueError("bidirectional rows are not decoded with a cache")
            if valid is not None:
                mask = valid[:, None, None, :]
        elif cache is not None or valid is not None:
            if valid is None:
                valid = torch.ones(B, T, dtype=torch.bool, device=tokens.device)
            if cache is not None:
                cache.valid[:, start : start + T] = valid
                key_valid = cache.valid[:, : start + T]
            else:
                key_valid = valid
            S = key_valid.shape[1]
            q_idx = torch.arange(start, start + T, device=tokens.device)[:, None]
            k_idx = torch.arange(S, device=tokens.device)[None, :]
            mask = (k_idx <= q_idx)[None] & key_valid[:, None, :]
            mask = mask | (k_idx == q_idx)[None]  # a padded query attends to itself: no empty rows
            mask = mask[:, None]  # (B, 1, T, S)
        x = self.wte(tokens)
        x = x + (self.wse(segments) if segments is not None else self.wse.weight[0])
        x = self.drop(x)
        rope = rotary(positions, self.cfg.n_embd // self.cfg.n_head, x.dtype, self.cfg.rope_base)
        for block in self.blocks:
            x = block(x, mask, rope, cache, causal, valid)
        if cache is not None:
            cache.length += T
        if self.pool is not None and not causal:
            x = self._pool_residues(x, valid)
        x = self.ln_f(x)
        return x if hidden else self.head(x)

    def _pool_residues(self, x: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
        """Add to the states where per-protein labels are read (the control token, column 0; one-pass rows:
        <LOC> and <MS>, columns 0 and 1) a per-feature softmax-weighted average of the residue states (the
        columns after them, padding excluded)."""
        k = self.prefix
        residues = x[:, k:]
        scores = self.pool(residues).float()
        if valid is not None:
            scores = scores.masked_fill(~valid[:, k:, None], float("-inf"))
        weights = torch.softmax(scores, dim=1).to(residues.dtype)
        pooled = (weights * residues).sum(1, keepdim=True)
        return torch.cat([x[:, :k] + pooled, residues], dim=1)
