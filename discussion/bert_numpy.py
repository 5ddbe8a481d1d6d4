"""A sentence-transformers BERT encoder (all-MiniLM-L6-v2) in numpy, for the affinity map.

Same computation as sentence-transformers' Transformer -> mean pooling -> normalise, on the
same safetensors weights and tokenizer.json, without importing torch or transformers: a worker
loads it in about a second instead of spending seconds importing torch, and on one thread it
embeds short labels about as fast (the labels are sorted by length so batches carry little
padding). Vectors agree with sentence-transformers' to float32 rounding
(benchmarks/discussion_embed_check.py --engines prints the largest cosine difference).
"""

from __future__ import annotations

import json
import os

import numpy as np


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(-1, keepdims=True)
    return centred / np.sqrt(var + eps) * w + b


class BertEncoder:
    def __init__(self, path: str, threads: int = 1, parallel: int = 1):
        from safetensors.numpy import load_file
        from scipy.special import erf
        from tokenizers import Tokenizer

        self._erf = erf
        with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
            config = json.load(f)
        max_len = 256
        try:
            with open(os.path.join(path, "sentence_bert_config.json"), encoding="utf-8") as f:
                max_len = int(json.load(f).get("max_seq_length", 256))
        except OSError:
            pass
        if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
            raise ValueError(f"{path}: not a BERT model with gelu ({config.get('model_type')})")
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.threads = threads
        self.parallel = max(1, parallel)
        self.tokenizer = Tokenizer.from_file(os.path.join(path, "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=min(max_len, int(config["max_position_embeddings"])))
        w = load_file(os.path.join(path, "model.safetensors"))
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in w else ""
        g = lambda name: w[prefix + name]  # noqa: E731
        self.word = g("embeddings.word_embeddings.weight")
        self.pos = g("embeddings.position_embeddings.weight")
        self.type0 = g("embeddings.token_type_embeddings.weight")[0]
        self.emb_ln = (g("embeddings.LayerNorm.weight"), g("embeddings.LayerNorm.bias"))
        self.layers = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            qkv_w = np.concatenate([g(p + f"attention.self.{n}.weight") for n in ("query", "key", "value")], axis=0)
            qkv_b = np.concatenate([g(p + f"attention.self.{n}.bias") for n in ("query", "key", "value")])
            self.layers.append({
                "qkv_w": np.ascontiguousarray(qkv_w.T), "qkv_b": qkv_b,
                "o_w": np.ascontiguousarray(g(p + "attention.output.dense.weight").T), "o_b": g(p + "attention.output.dense.bias"),
                "ln1": (g(p + "attention.output.LayerNorm.weight"), g(p + "attention.output.LayerNorm.bias")),
                "i_w": np.ascontiguousarray(g(p + "intermediate.dense.weight").T), "i_b": g(p + "intermediate.dense.bias"),
                "f_w": np.ascontiguousarray(g(p + "output.dense.weight").T), "f_b": g(p + "output.dense.bias"),
                "ln2": (g(p + "output.LayerNorm.weight"), g(p + "output.LayerNorm.bias")),
            })
        self.dim = self.word.shape[1]

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        batch, length = ids.shape
        h = self.word[ids] + self.pos[:length][None] + self.type0
        h = _layer_norm(h, *self.emb_ln, self.eps).astype(np.float32)
        heads, dim = self.heads, self.dim
        hd = dim // heads
        bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :].astype(np.float32)
        scale = np.float32(1.0 / np.sqrt(hd))
        for layer in self.layers:
            x = h.reshape(batch * length, dim)
            qkv = (x @ layer["qkv_w"] + layer["qkv_b"]).reshape(batch, length, 3, heads, hd)
            q = qkv[:, :, 0].transpose(0, 2, 1, 3)
            k = qkv[:, :, 1].transpose(0, 2, 3, 1)
            v = qkv[:, :, 2].transpose(0, 2, 1, 3)
            scores = (q @ k) * scale + bias
            scores -= scores.max(-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(-1, keepdims=True)
            ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(batch * length, dim)
            attn = ctx @ layer["o_w"] + layer["o_b"]
            x = _layer_norm(x + attn, *layer["ln1"], self.eps)
            inner = x @ layer["i_w"] + layer["i_b"]
            inner = 0.5 * inner * (1.0 + self._erf(inner * np.float32(1.0 / np.sqrt(2.0))))
            out = inner.astype(np.float32) @ layer["f_w"] + layer["f_b"]
            h = _layer_norm(x + out, *layer["ln2"], self.eps).astype(np.float32).reshape(batch, length, dim)
        summed = (h * mask[:, :, None]).sum(1)
        pooled = summed / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Unit vectors (float32), row i for texts[i].

        With `parallel` > 1, batches run in that many Python threads, each with a one-thread
        BLAS (numpy releases the GIL in its kernels): on an idle 2-core machine the labels
        embed nearly twice as fast, and on a busy one no slower than one thread — where
        BLAS's own threads spin-wait for each other and embedded 4x slower (78 vs 314
        labels/s at load 2-3, benchmarks/discussion_map.py). Each batch's vectors do not
        depend on the others: the result is the same to the bit."""
        from concurrent.futures import ThreadPoolExecutor

        from threadpoolctl import threadpool_limits

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        batches = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]

        def run(idx: list[int]) -> None:
            length = max(len(encodings[i].ids) for i in idx)
            ids = np.zeros((len(idx), length), dtype=np.int64)
            mask = np.zeros((len(idx), length), dtype=np.float32)
            for row, i in enumerate(idx):
                seq = encodings[i].ids
                ids[row, :len(seq)] = seq
                mask[row, :len(seq)] = 1.0
            out[idx] = self._forward(ids, mask)

        workers = min(self.parallel, len(batches))
        with threadpool_limits(limits=self.threads if workers <= 1 else 1):
            if workers <= 1:
                for idx in batches:
                    run(idx)
            else:
                with ThreadPoolExecutor(workers, thread_name_prefix="embed") as pool:
                    list(pool.map(run, batches))
        return out
