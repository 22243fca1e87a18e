"""Valence, arousal and dominance: EmoBank, and the regression head over each encoder.

EmoBank (Buechel and Hahn, EACL 2017; CC BY-SA 4.0): 10,062 English sentences with
mean reader/writer ratings on 1-5 (3 = neutral), split train/dev/test by the file.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DIMENSIONS: tuple[str, ...] = ("valence", "arousal", "dominance")


@dataclass(frozen=True)
class EmoBank:
    texts: list[str]
    vad: np.ndarray  # (n, 3) float32 on EmoBank's 1-5 scale
    split: np.ndarray  # (n,) "train" | "dev" | "test"
    genre: np.ndarray  # (n,) see GENRES


def read_emobank(path: Path) -> EmoBank:
    texts, vad, split, genre = [], [], [], []
    with path.open(encoding="utf-8", newline="") as f:
        for record in csv.DictReader(f):
            text = (record.get("text") or "").strip()
            if not text:
                continue
            texts.append(text)
            vad.append([float(record["V"]), float(record["A"]), float(record["D"])])
            split.append(record["split"])
            genre.append(genre_of(record["id"]))
    return EmoBank(texts, np.array(vad, dtype=np.float32), np.array(split), np.array(genre))


# EmoBank's sentences come from SemEval-2007 Task 14 (news headlines) and from six
# genres of MASC. The file carries only the MASC document name in each id; the genre
# of each document is MASC's folder (blog, essays, fiction, letters, newspaper,
# travel guides), written out here from MASC's layout.
_MASC_GENRES: dict[str, tuple[str, ...]] = {
    "blog": (
        "Acephalous-Cant-believe", "Acephalous-Internet", "Anti-Terrorist",
        "Fermentation_Eminent-Domain", "Fermentation_HR5034", "How_soon-Fans",
        "How_soon-Lebron-James", "Tupelo-Honey-Cafe", "Uprooted_Bike",
        "Uprooted_Farming-on-Sand", "blog-monastery", "blog-new-year's-resolutions",
        "lessig_blog-carbon", "detroit", "Seedbombing", "cable_spool_fort", "vampires",
    ),
    "essays": (
        "A_defense_of_Michael_Moore", "Ant_Robot", "Black_and_white", "Homosexuality",
        "anth_essay_4", "Ohio_Steel", "Bartok", "Madame_White_Snake",
    ),
    "fiction": (
        "Nathans_Bylichka", "captured_moments", "lw1", "The_Black_Willow", "easy_money",
        "hotel-california",
    ),
    "travel_guides": (
        "HistoryLasVegas", "IntroDublin", "IntroHongKong", "WhatToHongKong",
        "WhereToHongKong", "Italy",
    ),
    "newspaper": ("20000410_nyt-NEW", "20000415_apw_eng-NEW", "20000419_apw_eng-NEW",
                  "20020731-nyt", "A1", "sucker"),
}  # fmt: skip
_GENRE_OF = {doc: genre for genre, docs in _MASC_GENRES.items() for doc in docs}
GENRES: tuple[str, ...] = (
    "blog", "essays", "fiction", "letters", "newspaper", "travel_guides", "headlines",
)  # fmt: skip


def genre_of(sentence_id: str) -> str:
    doc = sentence_id.rsplit("_", 2)[0]
    if doc == "SemEval":
        return "headlines"
    if doc in _GENRE_OF:
        return _GENRE_OF[doc]
    if doc.startswith(("NYTnewswire", "wsj_")):
        return "newspaper"
    # The rest are MASC's letters: fundraising and customer letters (110CYL068,
    # aspca1, audubon1, wwf12, ...).
    return "letters"


# --- the head over an ONNX classifier's pooled features ---------------------------------


def pooled_tensor(graph: object) -> str:
    """The sentence embedding the emotion head reads: the nearest `Div` (mean pooling)
    upstream of the Sigmoid that makes `probabilities`. Walking back, rather than
    matching the head's node, finds it in the fp32 graph (Gemm) and in the int8 one
    (DynamicQuantizeLinear -> MatMulInteger -> ... -> Add) alike."""
    nodes = list(graph.node)  # type: ignore[attr-defined]
    producer = {out: n for n in nodes for out in n.output}
    frontier = [producer["probabilities"]]
    seen: set[str] = set()
    while frontier:
        node = frontier.pop(0)
        if node.op_type == "Div":
            return str(node.output[0])
        for name in node.input:
            if name in producer and name not in seen:
                seen.add(name)
                frontier.append(producer[name])
    raise ValueError("no pooling Div upstream of 'probabilities'")


def exposing_pooled(model_path: Path) -> bytes:
    """The model with its pooled sentence embedding as an extra output `pooled`."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(model_path))
    name = pooled_tensor(model.graph)
    model.graph.node.append(helper.make_node("Identity", [name], ["pooled"]))
    model.graph.output.append(helper.make_tensor_value_info("pooled", TensorProto.FLOAT, None))
    return bytes(model.SerializeToString())


def layer_outputs(graph: object) -> list[str]:
    """The encoder's hidden states, embeddings first: the outputs of its embedding
    LayerNorm and of every layer's output LayerNorm (BERT-style ONNX exports)."""
    names = [n.output[0] for n in graph.node if n.op_type == "LayerNormalization"]  # type: ignore[attr-defined]
    return [x for x in names if "embeddings/LayerNorm" in x or ("/output/LayerNorm" in x
            and "/attention/" not in x)]  # fmt: skip


def exposing_layer_means(model_path: Path) -> bytes:
    """The model with `layer_means` (n, layers x hidden): the masked mean of every hidden
    state, computed as the graph computes its own pooled vector."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(model_path))
    means = _add_layer_means(model.graph)
    model.graph.node.append(helper.make_node("Identity", [means], ["layer_means"]))
    model.graph.output.append(helper.make_tensor_value_info("layer_means", TensorProto.FLOAT, None))
    return bytes(model.SerializeToString())


def _add_layer_means(graph: Any) -> str:
    """Nodes computing the masked mean of each hidden state, concatenated; returns the
    name of the (n, layers x hidden) tensor. Reuses the graph's own mask and count."""
    from onnx import helper

    producer = {out: n for n in graph.node for out in n.output}
    if "/moodpipe/vad/layer_means" in producer:  # a head is attached: same features
        return "/moodpipe/vad/layer_means"
    pool = producer[pooled_tensor(graph)]  # Div(ReduceSum(Mul(h, mask)), Clip(count))
    total = producer[pool.input[0]]  # ReduceSum
    masked = producer[total.input[0]]  # Mul(h, mask)
    mask, count, axes = masked.input[1], pool.input[1], total.input[1]
    means = []
    for k, hidden in enumerate(layer_outputs(graph)):
        prefix = f"/moodpipe/vad/layer{k}"
        graph.node.extend([
            helper.make_node("Mul", [hidden, mask], [f"{prefix}/masked"]),
            helper.make_node("ReduceSum", [f"{prefix}/masked", axes], [f"{prefix}/sum"],
                             keepdims=0),
            helper.make_node("Div", [f"{prefix}/sum", count], [f"{prefix}/mean"]),
        ])  # fmt: skip
        means.append(f"{prefix}/mean")
    graph.node.append(helper.make_node("Concat", means, ["/moodpipe/vad/layer_means"], axis=1))
    return "/moodpipe/vad/layer_means"


def attach_vad_head(src: Path, dst: Path, weight: np.ndarray, bias: np.ndarray) -> None:
    """Write `src` with a VAD head as a second output `vad` (n, 3), EmoBank's 1-5
    scale: `layer_means @ weight.T + bias`, a linear read of the masked mean of every
    hidden state of the same encoder pass (weight: (3, layers x hidden)). A head
    attached before is replaced; the emotion output is untouched, bit for bit."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    for node in [n for n in graph.node if n.output[0] == "vad" or n.output[0].startswith(
            "/moodpipe/vad/")]:  # fmt: skip
        graph.node.remove(node)
    for out in [o for o in graph.output if o.name == "vad"]:
        graph.output.remove(out)
    for init in [i for i in graph.initializer if i.name.startswith("moodpipe.vad.")]:
        graph.initializer.remove(init)
    features = _add_layer_means(graph)
    graph.initializer.extend([
        numpy_helper.from_array(weight.astype(np.float32), "moodpipe.vad.weight"),
        numpy_helper.from_array(bias.astype(np.float32), "moodpipe.vad.bias"),
    ])  # fmt: skip
    graph.node.append(helper.make_node(
        "Gemm", [features, "moodpipe.vad.weight", "moodpipe.vad.bias"], ["vad"], transB=1,
        name="/moodpipe/vad/Gemm",
    ))  # fmt: skip
    graph.output.append(helper.make_tensor_value_info("vad", TensorProto.FLOAT, ["batch", 3]))
    onnx.checker.check_model(model)
    tmp = dst.with_name(dst.name + ".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(dst)


def fit_ridge(
    x: np.ndarray, y: np.ndarray, train: np.ndarray, dev: np.ndarray,
    alphas: tuple[float, ...] = (1, 10, 30, 100, 300, 1000, 3000),
) -> tuple[np.ndarray, np.ndarray, float]:  # fmt: skip
    """Ridge regression y ~ x, alpha chosen on `dev` (sum of Pearson r over the
    columns); returns (weight (k, d), bias (k,), alpha) in x's own units."""
    mu, sd = x[train].mean(0), x[train].std(0) + 1e-6
    z = (x - mu) / sd
    a = np.c_[z, np.ones(len(z))]
    best: tuple[float, np.ndarray, float] | None = None
    for alpha in alphas:
        eye = np.eye(a.shape[1])
        eye[-1, -1] = 0
        w = np.linalg.solve(a[train].T @ a[train] + alpha * eye, a[train].T @ y[train])
        pred = a[dev] @ w
        score = sum(float(np.corrcoef(pred[:, k], y[dev, k])[0, 1]) for k in range(y.shape[1]))
        if best is None or score > best[0]:
            best = (score, w, alpha)
    assert best is not None
    _, w, alpha = best
    weight = (w[:-1] / sd[:, None]).T  # fold the standardisation into the weights
    bias = w[-1] - (mu / sd) @ w[:-1]
    return weight.astype(np.float32), bias.astype(np.float32), float(alpha)


def train_vad_mlp(
    x: np.ndarray, y: np.ndarray, train: np.ndarray, dev: np.ndarray,
    *, hidden: int = 256, epochs: int = 120, seed: int = 13,
) -> tuple[dict[str, np.ndarray], dict[str, float]]:  # fmt: skip
    """A small VAD head (x -> hidden, GELU -> 3) over frozen sentence embeddings, MSE on
    standardised targets, the epoch with the best dev r sum kept. Returns the weights
    with the target scaling folded into the last layer (EmoBank 1-5 out: `vad_w1`,
    `vad_b1`, `vad_w2`, `vad_b2`) and the dev r per dimension."""
    import torch

    torch.manual_seed(seed)
    mean, std = y[train].mean(0), y[train].std(0)
    target = torch.tensor((y - mean) / std, dtype=torch.float32)
    inputs = torch.tensor(x, dtype=torch.float32)
    model = torch.nn.Sequential(
        torch.nn.Dropout(0.1), torch.nn.Linear(x.shape[1], hidden), torch.nn.GELU(),
        torch.nn.Dropout(0.1), torch.nn.Linear(hidden, y.shape[1]),
    )  # fmt: skip
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    rows = np.flatnonzero(train)
    rng = np.random.default_rng(seed)
    best: tuple[float, dict[str, np.ndarray], list[float]] | None = None
    for _ in range(epochs):
        model.train()
        rng.shuffle(rows)
        for start in range(0, len(rows), 64):
            batch = rows[start : start + 64]
            loss = ((model(inputs[batch]) - target[batch]) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            pred = model(inputs[dev]).numpy()
        r = [float(np.corrcoef(pred[:, k], target[dev, k].numpy())[0, 1]) for k in range(3)]
        if best is None or sum(r) > best[0]:
            first: Any = model[1]
            last: Any = model[4]
            weights = {
                "vad_w1": first.weight.detach().numpy().copy(),
                "vad_b1": first.bias.detach().numpy().copy(),
                # y = (h @ w2.T + b2) * std + mean, folded into the layer
                "vad_w2": (last.weight.detach().numpy() * std[:, None]).astype(np.float32),
                "vad_b2": (last.bias.detach().numpy() * std + mean).astype(np.float32),
            }
            best = (sum(r), weights, r)
    assert best is not None
    return best[1], {d: round(v, 4) for d, v in zip(DIMENSIONS, best[2], strict=True)}


def vad_head_module(weights: Any) -> Any:
    """`train_vad_mlp`'s weights (a dict or a loaded .npz) as a torch module."""
    import torch

    first = torch.nn.Linear(weights["vad_w1"].shape[1], weights["vad_w1"].shape[0])
    last = torch.nn.Linear(weights["vad_w2"].shape[1], weights["vad_w2"].shape[0])
    with torch.no_grad():
        for layer, w, b in ((first, "vad_w1", "vad_b1"), (last, "vad_w2", "vad_b2")):
            layer.weight.copy_(torch.from_numpy(np.asarray(weights[w], dtype=np.float32)))
            layer.bias.copy_(torch.from_numpy(np.asarray(weights[b], dtype=np.float32)))
    return torch.nn.Sequential(first, torch.nn.GELU(), last).eval()


def vad_head_predict(weights: Any, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return vad_head_module(weights)(torch.from_numpy(x.astype(np.float32))).numpy()


def english_layer_means(model_path: Path, texts: list[str], tokenizer_path: Path) -> np.ndarray:
    """`layer_means` of `texts` through the served English classifier, length-bucketed."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    from pipeline.inference.onnx_local import padded

    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    tokenizer.no_padding()
    session = ort.InferenceSession(exposing_layer_means(model_path),
                                   providers=["CPUExecutionProvider"])  # fmt: skip
    encodings = tokenizer.encode_batch(texts)
    order = np.argsort([len(e.ids) for e in encodings], kind="stable")
    out: np.ndarray | None = None
    for start in range(0, len(order), 32):
        idx = order[start : start + 32]
        (means,) = session.run(["layer_means"], padded([encodings[i] for i in idx]))
        if out is None:
            out = np.zeros((len(texts), means.shape[1]), dtype=np.float32)
        out[idx] = means
    assert out is not None
    return out


def train_english_vad(repo: Path, emobank: Path) -> dict[str, Any]:
    """`moodpipe train --vad`: the English model's VAD head, attached to its served
    graphs (fp16-stored and int8). Ridge over the masked means of every hidden state of
    the frozen emotion encoder, alpha chosen on EmoBank dev; EmoBank test r reported."""
    bank = read_emobank(emobank)
    classifier = repo / "emotion_classifier" / "1"
    x = english_layer_means(classifier / "model.onnx", bank.texts,
                            repo / "emotion_tokenizer" / "1" / "tokenizer.json")  # fmt: skip
    train, dev, test = (bank.split == s for s in ("train", "dev", "test"))
    weight, bias, alpha = fit_ridge(x, bank.vad, train, dev, alphas=(300, 1000, 3000, 10000))
    pred = x @ weight.T + bias
    report: dict[str, Any] = {"alpha": alpha, "features": int(x.shape[1])}
    for name, rows in (("dev", dev), ("test", test)):
        report[f"emobank_{name}_r"] = {
            d: round(float(np.corrcoef(pred[rows, k], bank.vad[rows, k])[0, 1]), 4)
            for k, d in enumerate(DIMENSIONS)
        }
    for onnx_file in ("model.onnx", "model_int8.onnx"):
        attach_vad_head(classifier / onnx_file, classifier / onnx_file, weight, bias)
    return report
