"""Support threads without services: the contract, thread mood and its alerts, the
reply playbook, and explanations (the in-process models, as `moodpipe explain` runs).

tests/test_threads_e2e.py runs the thread scenario through the real broker, Triton and
ClickHouse engine, across a restart and a kill -9.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from pipeline.alerts.detector import AlertDetector, thread_key
from pipeline.alerts.models import Alert, ScoredEvent
from pipeline.alerts.playbook import PlaybookError, load_playbook, parse_playbook
from pipeline.alerts.rules import RulesError, load_rules, parse_rules
from pipeline.alerts.threads import observe_turn
from pipeline.emotions import LABELS
from pipeline.records import RecordValidator, Rejected
from pipeline.records.models import SupportTicket

T0 = datetime(2026, 11, 3, 10, 0, tzinfo=UTC).timestamp()
RULES = load_rules()


def turn(n: int, role: str, mood: float, anger: float = 0.0, *, thread: str = "TH-1",
         minute: float | None = None, customer: str = "C-1", tier: str = "standard",
         priority: str = "normal") -> ScoredEvent:  # fmt: skip
    """A hand-scored ticket turn: `mood` is its sentiment score, `anger` its anger."""
    probs = {label: 0.0 for label in LABELS}
    probs["anger"] = anger
    negative = mood <= -0.3
    return ScoredEvent(
        event_id=f"{thread}-{n}", source="ticket", brand="B", text=f"turn {n}",
        created_at=T0 + 60 * (minute if minute is not None else 2 * n), scores=probs,
        sentiment="negative" if negative else ("positive" if mood >= 0.3 else "neutral"),
        sentiment_score=mood, top_emotion="anger" if anger >= 0.5 else "neutral",
        ekman="anger" if anger >= 0.5 else "neutral", customer_id=customer,
        customer_tier=tier, priority=priority, product="billing", thread_id=thread,
        author_role=role,
    )  # fmt: skip


def run(events: list[ScoredEvent], rules: Any = RULES) -> tuple[list[Alert], dict[str, Any]]:
    detector = AlertDetector(rules)
    store: dict[str, Any] = {}
    alerts: list[Alert] = []
    for offset, event in enumerate(events):
        detection = detector.process(store, event, offset, 0)
        alerts += detection.alerts
        for key, value in detection.writes:
            store[key] = value
        for key in detection.deletes:
            store.pop(key, None)
    return alerts, store


def kinds(alerts: list[Alert]) -> list[tuple[str, str, str]]:
    return [(a.kind, a.subject, a.severity) for a in alerts]


ESCALATING = [
    turn(1, "customer", 0.0),
    turn(2, "agent", 0.1),
    turn(3, "customer", -0.4, 0.3),
    turn(4, "agent", 0.0),
    turn(5, "customer", -0.85, 0.2),  # fell 0.85 from the best: worsening
]


# --- the contract -------------------------------------------------------------------


def ticket_doc(**extra: Any) -> bytes:
    doc = {"id": "T1", "customer_id": "C1", "customer_tier": "standard", "product": "billing",
           "channel": "chat", "body": "Hello there", "priority": "normal",
           "created_at": "2026-11-03T10:00:00Z", **extra}  # fmt: skip
    return json.dumps(doc).encode()


def test_ticket_contract_thread_fields_optional_and_checked() -> None:
    validator = RecordValidator(100_000, 5000)
    today = validator.validate("ticket", ticket_doc())
    assert isinstance(today, SupportTicket)
    assert (today.thread_id, today.author_role) == ("T1", "customer")  # a thread of its own
    agent = validator.validate("ticket", ticket_doc(thread_id="TH-9", author_role="agent"))
    assert isinstance(agent, SupportTicket)
    assert (agent.thread_id, agent.author_role, agent.from_customer) == ("TH-9", "agent", False)
    for bad, where in (({"author_role": "manager"}, "$.author_role"),
                       ({"thread_id": ""}, "$.thread_id"), ({"thread_id": 7}, "$.thread_id"),
                       ({"thread_id": "x" * 129}, "$.thread_id")):  # fmt: skip
        rejected = validator.validate("ticket", ticket_doc(**bad))
        assert isinstance(rejected, Rejected) and rejected.code == "schema", bad
        assert rejected.reason.startswith(where), rejected.reason
    control = validator.validate("ticket", ticket_doc(thread_id="TH\u0007"))
    assert isinstance(control, Rejected) and control.code == "invalid_text"


def test_scored_messages_from_before_threads_read_as_one_message_threads() -> None:
    message = {"event_id": "T1", "source": "ticket", "brand": "B", "text": "x",
               "created_at": "2026-11-03T10:00:00Z", "scores": {"anger": 0.1},
               "sentiment": "neutral", "sentiment_score": 0.0, "top_emotion": "neutral",
               "ekman": "neutral"}  # fmt: skip
    event = ScoredEvent.from_message(message)
    assert (event.thread_id, event.author_role, event.from_customer) == ("T1", "customer", True)
    post = ScoredEvent.from_message({**message, "source": "post"})
    assert (post.thread_id, post.author_role) == ("", "")


# --- thread mood and alerts -----------------------------------------------------------


def test_falling_mood_warns_once_with_first_current_worst_and_last_reply() -> None:
    alerts, store = run(ESCALATING)
    assert kinds(alerts) == [("thread_worsening", "TH-1", "warning")]
    evidence = alerts[0].evidence
    assert evidence["reasons"] == ["mood_falling"]
    assert (evidence["first_mood"], evidence["current_mood"], evidence["worst_mood"]) == (
        0.0, -0.85, -0.85)  # fmt: skip
    assert evidence["moods"] == [0.0, -0.4, -0.85]
    assert evidence["trend_per_turn"] == pytest.approx(-0.425)
    assert (evidence["turns"], evidence["customer_turns"]) == (5, 3)
    assert evidence["last_reply"]["event_id"] == "TH-1-4"
    assert alerts[0].event_time == T0 + 600
    state = store[thread_key("B", "TH-1")]["state"]
    assert state["worsened"] and state["current"]["event_id"] == "TH-1-5"


def test_a_small_or_mild_fall_does_not_warn() -> None:
    mild = [turn(1, "customer", 0.0), turn(2, "agent", 0.0), turn(3, "customer", -0.25)]
    assert run(mild)[0] == []  # fell 0.25 < drop 0.5
    small = [turn(1, "customer", -0.5), turn(2, "agent", 0.0), turn(3, "customer", -0.8)]
    assert run(small)[0] == []  # already negative: fell only 0.3


def test_angry_right_after_a_reply_warns_and_agent_turns_never_raise_angry_customer() -> None:
    events = [
        turn(1, "customer", 0.0),
        # Our own agent, in words the model reads as furious: scored, never an angry customer.
        turn(2, "agent", -0.9, 0.95),
        turn(3, "customer", -0.7, 0.9),
    ]
    alerts, _ = run(events)
    assert sorted(kinds(alerts)) == [("angry_customer", "C-1", "warning"),
                                     ("thread_worsening", "TH-1", "warning")]  # fmt: skip
    worsening = next(a for a in alerts if a.kind == "thread_worsening")
    assert worsening.evidence["reasons"] == ["mood_falling", "angry_after_reply"]
    assert worsening.evidence["last_reply"]["mood"] == -0.9
    angry = next(a for a in alerts if a.kind == "angry_customer")
    assert angry.evidence["ticket_id"] == "TH-1-3"
    only_agents = [turn(i, role, -0.9, 0.95) for i, role in enumerate(["agent", "bot"] * 4)]
    assert run(only_agents)[0] == []


def test_still_angry_customer_after_a_reply_is_not_a_worsening() -> None:
    events = [turn(1, "customer", -0.8, 0.9), turn(2, "agent", 0.2), turn(3, "customer", -0.8, 0.9)]
    alerts, _ = run(events)
    assert [k for k in kinds(alerts) if k[0].startswith("thread")] == []


def test_keeps_getting_worse_is_critical_once_then_recovered() -> None:
    events = [*ESCALATING, turn(6, "agent", 0.0), turn(7, "customer", -0.9, 0.95),
              turn(8, "agent", 0.5), turn(9, "customer", -0.95, 1.0),
              turn(10, "agent", 0.9), turn(11, "customer", 0.8)]  # fmt: skip
    alerts, store = run(events)
    assert kinds(alerts) == [
        ("thread_worsening", "TH-1", "warning"),
        ("angry_customer", "C-1", "warning"),
        ("thread_worsening", "TH-1", "critical"),  # angrier: 0.2 -> 0.95
        ("thread_recovered", "TH-1", "info"),
    ]
    critical = alerts[2]
    assert critical.evidence["reasons"][0] == "still_falling"
    assert critical.title.startswith("ESCALATED")
    assert len({a.alert_id for a in alerts}) == 4
    state = store[thread_key("B", "TH-1")]["state"]
    assert not state["worsened"] and state["worst"]["mood"] == -0.95


def test_cooldown_per_thread_holds_back_a_second_worsening() -> None:
    again = [*ESCALATING, turn(6, "customer", 0.5), turn(7, "agent", 0.0),
             turn(8, "customer", -0.9)]  # fmt: skip
    alerts, store = run(again)
    assert kinds(alerts) == [("thread_worsening", "TH-1", "warning"),
                             ("thread_recovered", "TH-1", "info")]  # fmt: skip
    assert store[thread_key("B", "TH-1")]["state"]["suppressed"] == 1
    later = [*again[:6], turn(7, "agent", 0.0, minute=80), turn(8, "customer", -0.9, minute=82)]
    assert kinds(run(later)[0])[-1] == ("thread_worsening", "TH-1", "warning")


def test_out_of_order_turns_are_placed_by_created_at_and_late_ones_left_out() -> None:
    in_order, store_a = run(ESCALATING)
    shuffled = [ESCALATING[0], ESCALATING[2], ESCALATING[1], ESCALATING[4], ESCALATING[3]]
    out_of_order, store_b = run(shuffled)
    assert [a.alert_id for a in out_of_order] == [a.alert_id for a in in_order]
    a = store_a[thread_key("B", "TH-1")]["state"]
    b = store_b[thread_key("B", "TH-1")]["state"]
    assert a["turns"] == b["turns"]  # the same ordered turns
    assert (a["first"], a["current"], a["worst"], a["last_reply"]) == (
        b["first"], b["current"], b["worst"], b["last_reply"])  # fmt: skip
    # A reply placed before the customer's latest turn makes it "right after a reply".
    angry = [turn(1, "customer", -0.1), turn(3, "customer", -0.35, 0.9), turn(2, "agent", 0.0)]
    assert kinds(run(angry)[0])[-1] == ("thread_worsening", "TH-1", "warning")
    # Older than the grace (5 minutes before the latest turn): counted, not placed.
    late = [turn(1, "customer", 0.0, minute=0), turn(2, "customer", 0.1, minute=30),
            turn(3, "customer", -0.9, minute=10)]  # fmt: skip
    alerts, store = run(late)
    state = store[thread_key("B", "TH-1")]["state"]
    assert alerts == [] and state["late"] == 1 and len(state["turns"]) == 2


def test_redelivered_turns_change_nothing() -> None:
    alerts, store = run([*ESCALATING, *ESCALATING])  # new offsets, same event ids
    assert kinds(alerts) == [("thread_worsening", "TH-1", "warning")]
    assert store[thread_key("B", "TH-1")]["state"]["all_turns"] == 5
    state = store[thread_key("B", "TH-1")]["state"]
    again, _ = observe_turn(
        json.loads(json.dumps(state)),
        ESCALATING[4],
        RULES.thread("B", "standard"),
        RULES.angry_customer("B", "standard"),
    )
    assert again == state


def test_one_message_threads_behave_as_today() -> None:
    angry = turn(1, "customer", -0.8, 0.9, thread="T-ONE")
    alerts, store = run([replace(angry, event_id="T-ONE")])
    assert kinds(alerts) == [("angry_customer", "C-1", "warning")]
    assert store[thread_key("B", "T-ONE")]["state"]["customer_turns"] == 1


def test_idle_threads_are_forgotten_by_the_sweep() -> None:
    from pipeline.alerts.detector import SWEEP_EVERY

    events = [turn(1, "customer", 0.0, thread="OLD")]
    events += [turn(i, "customer", 0.0, thread=f"N{i}", minute=4 * 24 * 60 + i)
               for i in range(SWEEP_EVERY)]  # fmt: skip
    _, store = run(events)
    assert thread_key("B", "OLD") not in store  # idle for more than 3 days
    assert thread_key("B", f"N{SWEEP_EVERY - 1}") in store


def test_thread_rules_validate_with_line_numbers_and_override_per_tier() -> None:
    rules = parse_rules("version: 1\nthread:\n  turns: 4\noverrides:\n"
                        "  - match: {tier: enterprise}\n    thread: {drop: 0.3}\n")  # fmt: skip
    assert rules.thread("B", "enterprise").drop == 0.3
    assert rules.thread("B", "free").turns == 4 and rules.thread("B", "free").drop == 0.5
    with pytest.raises(RulesError, match=r"line 3: thread.turns: Input should be greater"):
        parse_rules("version: 1\nthread:\n  turns: 1\n")
    with pytest.raises(RulesError, match=r"line 4: overrides.0.thread: recover_above must"):
        parse_rules("version: 1\noverrides:\n  - match: {tier: free}\n    thread:\n"
                    "      recover_above: -0.9\n")  # fmt: skip
    with pytest.raises(RulesError, match="thread rules are for tickets"):
        parse_rules("version: 1\noverrides:\n  - match: {source: post}\n    thread: {turns: 2}\n")


# --- the playbook -------------------------------------------------------------------


def test_playbook_validation_names_lines_and_settings() -> None:
    good = load_playbook()
    assert good.file.version >= 1 and len(good.file.entries) >= 5
    text = (
        "version: 1\nreviewed_by: leads\nreviewed_at: 2026-12-04\nentries:\n"
        "  - id: a\n    match: {emotion: rage}\n    tone: calm\n    next_step: call\n"
        "    template: 'Hello {customer_name}, about {ticket_id}'\n"
        "  - id: a\n    match: {tier: gold}\n    tone: calm\n    next_step: call\n"
        "    template: 'Hello there, ticket {ticket_id'\n"
    )
    with pytest.raises(PlaybookError) as failure:
        parse_playbook(text, "pb.yaml")
    message = str(failure.value)
    assert "pb.yaml:line 6: entries.0.match.emotion: unknown emotion group ['rage']" in message
    assert "pb.yaml:line 9: entries.0.template" in message and "{customer_name}" in message
    assert "pb.yaml:line 11: entries.1.match.tier: unknown tier ['gold']" in message
    assert "pb.yaml:line 14: entries.1.template: template is not a valid format string" in message
    for broken, expected in (
        ("version: 1\nentries: []\n", "reviewed_by: Field required"),
        ("entries: [\n", "not valid YAML"),
        ("- a\n", "must be a mapping"),
    ):
        with pytest.raises(PlaybookError, match=expected):
            parse_playbook(broken, "pb.yaml")
    with pytest.raises(PlaybookError, match="appears twice"):
        parse_playbook(
            text.replace("rage", "anger")
            .replace("{customer_name}", "{product}")
            .replace("gold", "free")
            .replace("{ticket_id'", "{ticket_id}'"),
            "pb.yaml",
        )


def test_playbook_advises_by_emotion_product_and_tier() -> None:
    playbook = load_playbook()
    alerts, _ = run([turn(1, "customer", 0.0), turn(2, "agent", 0.0),
                     turn(3, "customer", -0.8, 0.9)])  # fmt: skip
    angry = next(a for a in alerts if a.kind == "angry_customer")
    advice = playbook.advise(angry)
    assert advice is not None and advice["entry"] == "anger-billing"
    assert advice["playbook_version"] == playbook.file.version
    assert "TH-1-3" in advice["draft"] and "billing" in advice["draft"]
    enterprise = replace(angry, evidence={**angry.evidence, "product": "storage",
                                          "customer_tier": "enterprise"})  # fmt: skip
    assert playbook.advise(enterprise)["entry"] == "anger-enterprise"  # type: ignore[index]
    worsening = next(a for a in alerts if a.kind == "thread_worsening")
    assert playbook.advise(worsening)["entry"] in ("anger-billing", "worsening-thread")  # type: ignore[index]
    recovered = replace(worsening, kind="thread_recovered")
    assert playbook.advise(recovered) is None


@pytest.fixture(scope="module")
def local_router():  # type: ignore[no-untyped-def]
    from pipeline.scoring.routing import local_router
    from pipeline.settings import load_settings

    return local_router(load_settings())


def test_every_playbook_template_reads_calm_and_caring(local_router) -> None:  # type: ignore[no-untyped-def]
    from pipeline.model.reply_tone import template_tones

    playbook = load_playbook()
    tones = template_tones(playbook, local_router, load_rules())
    assert [t.entry for t in tones] == [e.id for e in playbook.file.entries]
    for tone in tones:
        assert tone.calm, tone
        assert tone.anger < load_rules().file.angry_customer.min_anger
        assert tone.sentiment in ("positive", "neutral") and tone.sentiment_score > 0
    # The check can fail: an angry "reply" is caught.
    angry = parse_playbook(
        "version: 1\nreviewed_by: x\nreviewed_at: 2026-12-04\nentries:\n"
        "  - {id: bad, match: {}, tone: curt, next_step: none,\n"
        "     template: 'This is ridiculous, stop complaining about {product}. I hate this.'}\n"
    )
    assert not template_tones(angry, local_router, load_rules())[0].calm


# --- explanations -------------------------------------------------------------------


def test_units_are_words_and_chinese_is_segmented_by_jieba() -> None:
    from pipeline.explain.units import text_units, without

    units = text_units("I'm SO angry!!! Don't e-mail me again 😡")
    assert [u.text for u in units] == ["I'm", "SO", "angry", "Don't", "e-mail", "me", "again"]
    zh = text_units("这家航空公司太糟糕了，客服根本不理人！")
    assert [u.text for u in zh][:4] == ["这家", "航空公司", "太", "糟糕"]
    assert all(u.text not in "，！" for u in zh)
    text = "这家航空公司太糟糕了"
    assert without(text, [zh[3]]) == "这家航空公司太了"
    long = text_units(" ".join(f"w{i}" for i in range(200)), max_units=48)
    assert len(long) <= 48 and long[0].text == "w0 w1 w2 w3 w4"


def test_explanations_find_the_angry_word_in_each_language(local_router) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from pipeline.explain import Explainer, anger_target

    explainer = Explainer(local_router)

    async def top(text: str, lang: str) -> tuple[str, str, list[str]]:
        e = await explainer.explain(text, lang, anger_target())
        return e.model, e.lang, [w.text for w in e.top(3)]

    model, lang, words = asyncio.run(top("I am furious, you charged me twice and nobody answers!",
                                         "en"))  # fmt: skip
    assert (model, lang, words[0]) == ("emotion", "en", "furious")
    model, lang, words = asyncio.run(top("Estoy furioso, me cobraron dos veces. ¡Qué vergüenza!",
                                         "es"))  # fmt: skip
    assert model == "emotion_ml" and words
    model, _, words = asyncio.run(top("这家航空公司太糟糕了，客服根本不理人，气死我了！", "zh"))
    assert model == "emotion_ml" and words and all(len(w) <= 4 for w in words)


def test_explanations_are_faithful_top_words_matter_more_than_random(local_router) -> None:  # type: ignore[no-untyped-def]
    """ERASER comprehensiveness on a small sample; `moodpipe eval --explanations`
    measures it on hundreds of texts (docs/explain-eval.json)."""
    import asyncio

    from pipeline.explain import Explainer, anger_target
    from pipeline.explain.faithfulness import comprehensiveness
    from pipeline.traffic.scenarios import ANGRY_TICKETS
    from pipeline.traffic.threads import written_threads

    items = [(t, "en") for t in ANGRY_TICKETS]
    items += [(text, th.lang) for th in written_threads() if th.expect == "worsening"
              for role, text in th.turns[-1:] if role == "customer"]  # fmt: skip
    result = asyncio.run(comprehensiveness(Explainer(local_router), items, anger_target(), k=3))
    assert result["texts"] >= 20
    assert result["mean_score_drop_top_k"] > 2 * max(result["mean_score_drop_random_k"], 0.01)
    assert result["top_beats_random_share"] >= 0.8


def test_written_threads_precision_and_recall(local_router) -> None:  # type: ignore[no-untyped-def]
    from pipeline.bench.threads import evaluate_written
    from pipeline.settings import load_settings

    result = evaluate_written(load_settings(), router=local_router)
    assert result["threads"] >= 40
    assert 0.4 <= result["positives"] / result["threads"] <= 0.6  # half escalating
    assert result["precision"] >= 0.9 and result["recall"] >= 0.9, result


def test_alert_texts_for_explanations_come_from_the_detector() -> None:
    detector = AlertDetector(RULES)
    store: dict[str, Any] = {}
    texts = {}
    events = [turn(1, "customer", 0.0), turn(2, "agent", 0.0), turn(3, "customer", -0.8, 0.9)]
    for offset, event in enumerate(events):
        detection = detector.process(store, replace(event, lang="en"), offset, 0)
        for key, value in detection.writes:
            store[key] = value
        texts.update(detection.texts)
    assert sorted(t.target for ts in texts.values() for t in ts) == ["anger", "anger"]
    assert {t.text for ts in texts.values() for t in ts} == {"turn 3"}
    assert {t.lang for ts in texts.values() for t in ts} == {"en"}


def test_explain_and_playbook_commands(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from pipeline.cli import main

    runner = CliRunner()
    done = runner.invoke(main, ["explain", "--json", "--lang", "en",
                                "I am furious, you charged me twice!"])  # fmt: skip
    assert done.exit_code == 0, done.output
    explained = json.loads(done.output.strip().splitlines()[-1])
    assert explained["model"] == "emotion" and explained["top"][0]["word"] == "furious"
    assert runner.invoke(main, ["explain", "--target", "rage", "x"]).exit_code != 0

    listed = runner.invoke(main, ["alerts", "playbook"])
    assert listed.exit_code == 0 and "anger-billing" in listed.output
    bad = tmp_path / "pb.yaml"
    bad.write_text("version: 1\nreviewed_by: x\nreviewed_at: 2026-12-04\nentries:\n"
                   "  - {id: a, match: {tier: gold}, tone: calm, next_step: call,\n"
                   "     template: 'Hello about {ticket_id}'}\n")  # fmt: skip
    refused = runner.invoke(main, ["alerts", "playbook", str(bad)])
    assert refused.exit_code != 0
    assert "line 5: entries.0.match.tier: unknown tier ['gold']" in refused.output


def test_alerts_list_cells_show_why_and_the_reply() -> None:
    from pipeline.cli.alerts import alert_extras

    explanation = json.dumps({"texts": [{"event_id": "t", "top": [
        {"word": "furious", "delta": 0.41}, {"word": "twice", "delta": 0.05}]}]})  # fmt: skip
    reply = json.dumps({"tone": "acknowledge", "draft": "Thank you for telling us."})
    why, said = alert_extras(explanation, reply)
    assert why == "furious (-0.41), twice (-0.05)"
    assert said == "[acknowledge] Thank you for telling us."
    assert alert_extras("", "") == ("", "")


def test_notifications_carry_why_flagged_and_the_suggested_reply() -> None:
    from pipeline.alerts.notify import grafana_text, slack_payload

    alerts, _ = run([turn(1, "customer", 0.0), turn(2, "agent", 0.0),
                     turn(3, "customer", -0.8, 0.9)])  # fmt: skip
    worsening = next(a for a in alerts if a.kind == "thread_worsening")
    explained = replace(
        worsening,
        explanation={"texts": [{"event_id": "TH-1-3", "top": [{"word": "furious", "delta": 0.4}]}]},
        reply=load_playbook().advise(worsening),
    )
    fields = {f["title"]: f["value"] for f in slack_payload(explained)["attachments"][0]["fields"]}
    assert fields["Why flagged"] == "furious (-0.40)"
    assert any(t.startswith("Suggested reply (") for t in fields)
    assert fields["Mood"] == "first +0.00, now -0.80"
    text = grafana_text(explained)
    assert "Why flagged: furious (-0.40)" in text and "Suggested tone:" in text
    assert "Why flagged" not in grafana_text(worsening)  # no explanation, no line
