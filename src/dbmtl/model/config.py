"""Model hyper-parameters and named presets."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields


def strict_from_dict(cls, d: dict, what: str):
    """Build a config dataclass, refusing unknown keys (a typo must not be silently ignored)."""
    unknown = set(d) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown {what} keys: {sorted(unknown)}")
    return cls(**d)


LABEL_INPUTS = ("teacher", "placeholder", "noised", "sampled")
KINDS = ("decoder", "encoder", "onepass")
BIDIRECTIONAL = ("encoder", "onepass")  # kinds whose labeled rows are read both ways


@dataclass
class ModelConfig:
    """The transformer of both kinds (GPT-2 style, pre-LayerNorm, rotary positions, tied output).

    context: tokens the model attends over; the per-task layouts in `dbmtl.data.layouts` fit inside it.
    n_segments: rows of the segment embedding (the layouts use 2 + one per task).
    kind: "decoder" (the paper: labels generated after `residues <CTRL>`) or "encoder" (the paper's named
      fix: `<CTRL> residues` read both ways, an output at every residue; LM rows stay causal), or
      "onepass" (`<LOC> <MS> residues` read both ways: all four answers from one pass, dbmtl.data.onepass).
    rope_base: rotary frequency base; small values make short distances easy to tell apart.
    label_inputs: what the decoder reads in place of the previous labels while training:
      "teacher"     the true labels (the paper's teacher forcing; honest prediction then decodes freely)
      "placeholder" the task's control token once per residue (prediction is one pass over the same)
      "noised"      the true labels, each replaced by a random label of its task with probability
                    label_noise (the model learns to read its own imperfect outputs; prediction decodes
                    freely, as for "teacher")
      "sampled"     scheduled sampling: the true labels, each replaced with probability label_noise by the
                    model's own prediction of that label (argmax over the task's labels, from a first
                    gradient-free pass over the true labels: the parallel variant of scheduled sampling,
                    one extra forward pass instead of one per residue); prediction decodes freely
    protein_pooling: how an encoder's per-protein answer (read at the control token) sees the residues:
      "cls"       the control token's own state (it attends to every residue in every layer)
      "attention" plus an attention-pooled summary of the residue states: for each feature a softmax over
                  residues of a learned score (light attention, Staerk et al. 2021, without its convolution)
    label_noise: replacement probability for "noised" and "sampled". 0.5 corrupts a third of SS3 inputs
      under "noised" (a random label may be the true one), about the error rate of the model's own
      predictions it reads later; under "sampled" it is the share of label inputs that are the model's own.
    conv_kernel: 0 (off) or an odd width: every block also mixes each token with its neighbours through a
      depthwise convolution over that many positions (centred in bidirectional rows, looking back only in
      causal rows), then a linear map. Secondary structure is mostly local; attention alone has to learn
      "look at my neighbours" from data, the convolution starts there. Encoder kind only (the decoder's
      KV-cache decoding has no convolution state).
    """

    vocab_size: int = 56
    n_layer: int = 6
    n_head: int = 4
    n_embd: int = 256
    context: int = 1024
    n_segments: int = 7
    dropout: float = 0.0
    kind: str = "decoder"
    rope_base: float = 1000.0
    label_inputs: str = "placeholder"
    label_noise: float = 0.5
    protein_pooling: str = "cls"
    conv_kernel: int = 0

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} is not divisible by n_head {self.n_head}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")
        if self.label_inputs not in LABEL_INPUTS:
            raise ValueError(f"label_inputs must be one of {LABEL_INPUTS}, not {self.label_inputs!r}")
        if self.protein_pooling not in ("cls", "attention"):
            raise ValueError(f"protein_pooling must be 'cls' or 'attention', not {self.protein_pooling!r}")
        if self.protein_pooling == "attention" and self.kind not in BIDIRECTIONAL:
            raise ValueError("protein_pooling 'attention' is for the encoder and onepass kinds")
        if self.conv_kernel and (self.conv_kernel < 0 or self.conv_kernel % 2 == 0):
            raise ValueError(f"conv_kernel must be 0 or an odd width, not {self.conv_kernel}")
        if self.conv_kernel and self.kind not in BIDIRECTIONAL:
            raise ValueError("conv_kernel is for the encoder and onepass kinds (decoding with a KV cache has no convolution state)")
        if self.n_segments < 1:
            raise ValueError(f"n_segments must be at least 1, not {self.n_segments}")
        if not 0.0 <= self.label_noise <= 1.0:
            raise ValueError(f"label_noise must be in [0, 1], not {self.label_noise}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return strict_from_dict(cls, d, "model config")

    def n_params(self) -> int:
        d = self.n_embd
        per_layer = 12 * d * d + 13 * d
        if self.conv_kernel:  # norm, depthwise kernel + bias, pointwise linear
            per_layer += 2 * d + (self.conv_kernel + 1) * d + d * d + d
        pool = d * d + d if self.protein_pooling == "attention" else 0
        return self.n_layer * per_layer + (self.vocab_size + self.n_segments) * d + 2 * d + pool


# paper: Elnaggar et al. (12 layers, hidden 1024, 16 heads, dropout 0.2, length 1024), ~152M parameters.
# Others are sized for a 2-core CPU: tiny for tests, mini (2.4M) for the bundled model, small (5M).
PRESETS: dict[str, dict] = {
    "tiny": dict(n_layer=2, n_head=2, n_embd=64, context=1024, dropout=0.0),
    "mini": dict(n_layer=5, n_head=4, n_embd=192, context=1024, dropout=0.1),
    "small": dict(n_layer=6, n_head=4, n_embd=256, context=1024, dropout=0.1),
    "base": dict(n_layer=8, n_head=6, n_embd=384, context=1024, dropout=0.1),
    "paper": dict(n_layer=12, n_head=16, n_embd=1024, context=1024, dropout=0.2, label_inputs="teacher"),
}
