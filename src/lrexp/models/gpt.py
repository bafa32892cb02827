"""A small decoder-only Transformer (GPT) from torch's own layers, with nanoGPT's settings.

Pre-norm blocks of causal self-attention (``F.scaled_dot_product_attention`` with
``is_causal=True``) and a GELU MLP; learned positions; the output head tied to the token
embedding; GPT-2's initialization (normal, std 0.02, and 0.02 / sqrt(2 * n_layer) on the
projections into the residual stream). The keys are nanoGPT's: ``n_layer``, ``n_head``,
``n_embd``, ``block_size``, ``dropout``, ``bias``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lrexp.errors import ConfigError


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd: int, n_head: int, dropout: float, bias: bool) -> None:
        super().__init__()
        self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.n_head, self.dropout = n_head, dropout
        self.resid_dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        batch, time, width = x.shape
        q, k, v = self.qkv(x).split(width, dim=2)
        q, k, v = (t.view(batch, time, self.n_head, -1).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True
        )
        y = y.transpose(1, 2).contiguous().view(batch, time, width)
        return self.resid_dropout(self.proj(y))


class Block(nn.Module):
    def __init__(self, n_embd: int, n_head: int, dropout: float, bias: bool) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, bias=bias)
        self.attn = CausalSelfAttention(n_embd, n_head, dropout, bias)
        self.ln_2 = nn.LayerNorm(n_embd, bias=bias)
        self.fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.proj = nn.Linear(4 * n_embd, n_embd, bias=bias)
        self.mlp_dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp_dropout(self.proj(F.gelu(self.fc(self.ln_2(x)))))


class GPT(nn.Module):
    """Token ids ``(batch, time)`` -> next-token logits ``(batch, time, vocabulary)``.

    ``num_outputs`` (the vocabulary) and ``input_shape`` (``(context,)``) are offered by lrexp
    from the data; ``vocab_size`` may be given instead, and must then match the data.
    """

    def __init__(
        self,
        num_outputs: int | None = None,
        input_shape: tuple[int, ...] | None = None,
        n_layer: int = 4,
        n_head: int = 4,
        n_embd: int = 128,
        block_size: int = 64,
        dropout: float = 0.0,
        bias: bool = False,
        vocab_size: int | None = None,
    ) -> None:
        super().__init__()
        if vocab_size is not None and num_outputs is not None and vocab_size != num_outputs:
            raise ConfigError(
                "model.vocab_size",
                f"is {vocab_size}, but the data's vocabulary has {num_outputs} tokens",
            )
        vocab = vocab_size if vocab_size is not None else num_outputs
        if vocab is None:
            raise ConfigError("model.vocab_size", "set it, or train on data that gives one")
        if n_embd % n_head:
            raise ConfigError("model.n_head", f"must divide n_embd ({n_embd}), got {n_head}")
        if input_shape is not None and input_shape[0] > block_size:
            raise ConfigError(
                "model.block_size",
                f"is {block_size}, shorter than the data's context of {input_shape[0]} tokens "
                "(dataset.block_size)",
            )
        self.block_size = block_size
        self.token_embedding = nn.Embedding(vocab, n_embd)
        self.position_embedding = nn.Embedding(block_size, n_embd)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(n_embd, n_head, dropout, bias) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd, bias=bias)
        self.head = nn.Linear(n_embd, vocab, bias=False)
        self.head.weight = self.token_embedding.weight  # tied: one tensor
        self.apply(self._init)
        residual_std = 0.02 / math.sqrt(2 * n_layer)
        for name, param in self.named_parameters():
            if name.endswith("proj.weight"):  # attention's and the MLP's output projections
                nn.init.normal_(param, std=residual_std)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, tokens: Tensor) -> Tensor:
        time = tokens.shape[1]
        positions = torch.arange(time, device=tokens.device)
        x = self.token_embedding(tokens.long()) + self.position_embedding(positions)
        x = self.dropout(x)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))
