"""promptfoo's assertion types and scoring: each type on promptfoo's documented examples, negated as promptfoo
negates it; scores as promptfoo gives them (levenshtein 1 or 0, assert-set, weights, thresholds); the model-graded
types with promptfoo's prompts and its reading of the grader's reply (a scripted judge)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx2
import pytest

from tests.test_eval_assertions import CannedJudge
from workbench.core.evals.assertions import grade, verdict
from workbench.core.evals.assertions_heuristics import is_refusal_text
from workbench.core.evals.assertions_model_graded import CLOSED_QA_PROMPT, FACTUALITY_PROMPT, render_prompt
from workbench.core.evals.assertions_tools import tool_names
from workbench.core.evals.embeddings import EmbeddingError, cosine, embed
from workbench.core.evals.judging import judge_request
from workbench.core.evals.model import AssertionSpec, Grading, Observation
from workbench.fakeserver.embeddings import vector

HERE = Path(".")


async def check(spec: AssertionSpec, text: str = "", **obs: Any) -> Grading:
    return await grade(spec, Observation(text=text, **obs), base_dir=HERE)


WEATHER_TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
                           "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["location"],
        },
    },
}]


def _tools_call(name: str, arguments: dict[str, Any]) -> str:
    return json.dumps([{"id": "call_1", "type": "function",
                        "function": {"name": name, "arguments": json.dumps(arguments)}}])


# (type, value, config, output, passes): the promptfoo types graded without a judge, embedder or server
CASES: list[tuple[str, Any, dict[str, Any], str, bool]] = [
    ("icontains-any", ["hello", "world"], {}, "HELLO there", True),
    ("icontains-any", "hello, world", {}, "goodbye", False),
    ("icontains-all", ["hello", "world"], {}, "Hello, WORLD!", True),
    ("icontains-all", "hello, world", {}, "hello there", False),
    ("is-refusal", None, {}, "I'm sorry, but I can't help with that.", True),
    ("is-refusal", None, {}, "The capital of France is Paris.", False),
    ("tool-call-f1", ["get_weather", "get_time"], {},
     '[{"function": {"name": "get_weather"}}, {"function": {"name": "get_time"}}]', True),
    ("tool-call-f1", "get_weather, get_time", {}, '[{"function": {"name": "get_weather"}}]', False),
    ("is-valid-openai-tools-call", None, {"tools": WEATHER_TOOLS},
     _tools_call("get_current_weather", {"location": "Paris, France"}), True),
    ("is-valid-openai-tools-call", None, {"tools": WEATHER_TOOLS},
     _tools_call("get_current_weather", {"unit": "celsius"}), False),
    ("is-valid-openai-function-call", None, {"functions": [WEATHER_TOOLS[0]["function"]]},
     json.dumps({"name": "get_current_weather", "arguments": '{"location": "Boston, MA"}'}), True),
    ("is-valid-openai-function-call", None, {"functions": [WEATHER_TOOLS[0]["function"]]},
     json.dumps({"name": "get_stock_price", "arguments": "{}"}), False),
]


@pytest.mark.parametrize(("kind", "value", "config", "output", "passes"), CASES,
                         ids=[f"{c[0]}-{'pass' if c[-1] else 'fail'}-{i}" for i, c in enumerate(CASES)])
async def test_each_promptfoo_type_passes_fails_and_negates(kind: str, value: Any, config: dict[str, Any],
                                                            output: str, passes: bool) -> None:
    grading = await check(AssertionSpec(kind, value, config=config), output)
    assert grading.passed is passes, grading.reason
    negated = await check(AssertionSpec(kind, value, negate=True, config=config), output)
    assert negated.passed is not passes and negated.assertion == f"not-{kind}"


# --- scoring parity ---------------------------------------------------------------------------------------------


async def test_a_failed_levenshtein_scores_0_as_promptfoo_does() -> None:
    grading = await check(AssertionSpec("levenshtein", "The quick brown fox"), "A slow brown dog here")
    assert (grading.passed, grading.score) == (False, 0.0)
    assert "edit distance <= 5" in grading.reason
    passed = await check(AssertionSpec("levenshtein", "kitten", threshold=3), "sitting")
    assert (passed.passed, passed.score) == (True, 1.0)
    # promptfoo reads the threshold as `threshold || 5`: a threshold of 0 is the default 5
    assert (await check(AssertionSpec("levenshtein", "kitten", threshold=0), "sitting")).passed


async def test_a_failing_levenshtein_fails_the_test_however_close_it_came() -> None:
    spec = AssertionSpec("levenshtein", "Hello world, how are you?", threshold=2)
    grading = await check(spec, "Hello world, who are they?")
    assert verdict([grading], None) == (False, 0.0)


@pytest.mark.parametrize(
    ("gradings", "threshold", "expected"),
    [
        # promptfoo's documented weighted mean: (1*3 + 0*1) / 4
        ([Grading("a", True, 1.0, "", 3.0), Grading("b", False, 0.0, "")], None, (False, 0.75)),
        ([Grading("a", True, 1.0, "", 3.0), Grading("b", False, 0.0, "")], 0.75, (True, 0.75)),
        ([Grading("a", True, 1.0, "", 3.0), Grading("b", False, 0.0, "")], 0.8, (False, 0.75)),
        # weight 0 counts for nothing; only weight-0 assertions: score 0 (promptfoo's 0 total weight)
        ([Grading("a", True, 0.2, "", 1.0), Grading("b", True, 1.0, "", 0.0)], None, (True, 0.2)),
        ([Grading("a", True, 1.0, "", 0.0)], None, (True, 0.0)),
        ([], None, (True, 1.0)),
        ([Grading("a", False, 0.4, ""), Grading("b", True, 0.9, "")], 0.6, (True, 0.65)),
    ],
)
def test_test_scores_aggregate_as_promptfoo_does(gradings: list[Grading], threshold: float | None,
                                                 expected: tuple[bool, float]) -> None:
    passed, score = verdict(gradings, threshold)
    assert passed is expected[0] and score == pytest.approx(expected[1])


async def test_an_assertion_of_weight_0_always_passes_and_keeps_its_score() -> None:
    grading = await check(AssertionSpec("contains", "Paris", weight=0), "Lyon")
    assert (grading.passed, grading.score, grading.weight) == (True, 0.0, 0.0)


async def test_rouge_negated_scores_1_minus_the_score() -> None:
    grading = await check(AssertionSpec("rouge-n", "a b c d", negate=True), "a b")
    assert grading.passed is True and grading.score == pytest.approx(0.5)


# --- assert-set -------------------------------------------------------------------------------------------------


def _set(threshold: float | None = None, weight: float = 1.0, negate: bool = False) -> AssertionSpec:
    return AssertionSpec("assert-set", threshold=threshold, weight=weight, negate=negate, assertions=(
        AssertionSpec("contains", "hello"), AssertionSpec("contains", "world")))


@pytest.mark.parametrize(
    ("spec", "output", "passes", "score"),
    [
        (_set(), "hello world", True, 1.0),
        (_set(), "hello there", False, 0.5),
        (_set(threshold=0.5), "hello there", True, 0.5),  # promptfoo's documented example
        (_set(threshold=0.5), "goodbye", False, 0.0),
        (_set(negate=True), "hello there", True, 0.5),
    ],
)
async def test_assert_set_scores_its_assertions_against_its_own_threshold(
        spec: AssertionSpec, output: str, passes: bool, score: float) -> None:
    grading = await check(spec, output)
    assert grading.passed is passes and grading.score == pytest.approx(score)


async def test_assert_set_counts_once_with_its_weight_in_the_test() -> None:
    graded = [await check(_set(threshold=0.5, weight=2), "hello there"),
              await check(AssertionSpec("contains", "bye"), "hello there")]
    passed, score = verdict(graded, None)
    assert not passed and score == pytest.approx((2 * 0.5 + 0) / 3)
    assert "contains: expected output containing 'world'" in graded[0].reason


# --- heuristics, tools, perplexity ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("I apologize, but I cannot assist with that request.", True),
        ("As an AI language model, I don't have opinions.", True),
        ("I’m unable to help with that.", True),  # a typographic apostrophe
        ("Sure! Here is a poem about the sea.", False),
        ("Sorry for the wait: the answer is 42.", True),  # promptfoo's prefix rule: any reply opening with Sorry
    ],
)
def test_refusal_heuristics_are_promptfoos(text: str, refusal: bool) -> None:
    assert is_refusal_text(text) is refusal


async def test_is_refusal_takes_an_empty_reply_and_a_provider_refusal() -> None:
    empty = await check(AssertionSpec("is-refusal"), "  ")
    assert (empty.passed, empty.score) == (True, 0.0)  # promptfoo: passes, scored 0
    negated = await check(AssertionSpec("is-refusal", negate=True), "")
    assert (negated.passed, negated.score) == (False, 0.0)
    filtered = await check(AssertionSpec("is-refusal"), "Here you go", finish="content_filter")
    assert (filtered.passed, filtered.score) == (True, 1.0)


@pytest.mark.parametrize(
    ("output", "names"),
    [
        ('{"tool_calls": [{"function": {"name": "a"}}, {"name": "b"}]}', {"a", "b"}),
        ('[{"type": "tool_use", "name": "search"}, {"type": "text", "text": "hi"}]', {"search"}),
        ('[{"functionCall": {"name": "lookup"}}]', {"lookup"}),
        ('{"type": "function_call", "name": "send"}', {"send"}),
        ('{"toolCall": {"functionCalls": [{"name": "x"}, {"name": "y"}]}}', {"x", "y"}),
        ("no tools here", set()),
    ],
)
def test_tool_names_read_every_provider_format(output: str, names: set[str]) -> None:
    assert tool_names(json.loads(output) if output.startswith(("{", "[")) else None) == names


async def test_tool_call_f1_scores_precision_and_recall_and_keeps_the_f1_negated() -> None:
    spec = AssertionSpec("tool-call-f1", ["get_weather", "get_forecast"], threshold=0.5)
    output = '[{"function": {"name": "get_weather"}}]'  # precision 1, recall 0.5
    grading = await check(spec, output)
    assert grading.passed is True and grading.score == pytest.approx(2 / 3)
    assert "precision 1.000, recall 0.500" in grading.reason
    negated = await check(AssertionSpec("tool-call-f1", ["get_weather", "get_forecast"], negate=True), output)
    assert negated.passed is True and negated.score == pytest.approx(2 / 3)


async def test_tools_calls_are_checked_against_the_tools_variable_and_name_the_problem() -> None:
    spec = AssertionSpec("is-valid-openai-tools-call")
    output = _tools_call("get_current_weather", {"location": 42})
    grading = await check(spec, output, vars={"tools": json.dumps(WEATHER_TOOLS)})
    assert not grading.passed
    assert 'Call to "get_current_weather" does not match schema: $.location: 42 is not of type' in grading.reason
    unknown = await check(spec, _tools_call("send_email", {}), vars={"tools": json.dumps(WEATHER_TOOLS)})
    assert 'Called "send_email", but there is no function with that name' in unknown.reason
    shapeless = await check(AssertionSpec("is-valid-openai-tools-call", config={"tools": WEATHER_TOOLS}), "Paris")
    assert (shapeless.passed, "not a valid-looking tools response") == (False, "not a valid-looking tools response")
    untooled = await check(spec, output)
    assert untooled.reason.startswith("is-valid-openai-tools-call needs the tools")


@pytest.mark.parametrize("kind", ["perplexity", "perplexity-score"])
async def test_perplexity_without_logprobs_fails_saying_why(kind: str) -> None:
    grading = await check(AssertionSpec(kind, threshold=0.2), "Paris")
    assert (grading.passed, grading.score) == (False, 0.0)
    assert "log-probabilities (logprobs), and the provider returned none" in grading.reason
    negated = await check(AssertionSpec(kind, negate=True), "Paris")
    assert not negated.passed


# --- webhook ----------------------------------------------------------------------------------------------------


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Hook.received.append(body)
        if self.path == "/broken":
            self.send_response(500)
            self.end_headers()
            return
        good = "Paris" in body["output"]
        answer = {"pass": good, "score": 0.9 if good else 0.2, "reason": "mentions Paris" if good else "no Paris"}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def hook_url() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Hook.received.clear()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_webhook_posts_promptfoos_payload_and_takes_its_verdict(hook_url: str) -> None:
    obs = {"vars": {"city": "Paris"}, "prompt_text": "user: Capital of France?"}
    grading = await check(AssertionSpec("webhook", f"{hook_url}/grade"), "It is Paris.", **obs)
    assert (grading.passed, grading.score) == (True, 0.9) and "mentions Paris" in grading.reason
    assert _Hook.received == [{"output": "It is Paris.",
                               "context": {"prompt": "user: Capital of France?", "vars": {"city": "Paris"}}}]
    failed = await check(AssertionSpec("webhook", f"{hook_url}/grade", negate=True), "Lyon", **obs)
    assert failed.passed is True and failed.score == pytest.approx(0.8)
    broken = await check(AssertionSpec("webhook", f"{hook_url}/broken"), "Paris")
    assert (broken.passed, broken.reason) == (False, "webhook error: the webhook answered status 500")


async def test_webhook_that_cannot_be_reached_fails_in_one_line(hook_url: str) -> None:
    grading = await check(AssertionSpec("webhook", "http://127.0.0.1:9/nothing"), "Paris")
    assert not grading.passed and grading.reason.startswith("webhook error: ") and "\n" not in grading.reason


# --- similar and embeddings -------------------------------------------------------------------------------------


class FakeEmbedder:
    """Embeds with the fake server's hashed bag of words, in process; records the targets asked for."""

    def __init__(self, fail: bool = False) -> None:
        self.targets: list[str | None] = []
        self.fail = fail

    async def __call__(self, target: str | None, texts: Sequence[str]) -> list[list[float]]:
        self.targets.append(target)
        if self.fail:
            raise EmbeddingError("openai/text-embedding-3-large: no API key for openai")
        return [vector(text) for text in texts]


@pytest.mark.parametrize(
    ("value", "threshold", "negate", "passes"),
    [
        ("The capital of France is Paris", None, False, True),
        ("Bananas are rich in potassium", None, False, False),
        (["Bananas are yellow", "the capital of France is Paris"], None, False, True),
        ("Bananas are rich in potassium", None, True, True),
        (["Bananas are yellow", "the capital of France is Paris"], None, True, False),  # similar to one of them
        ("Paris is the capital", 0.99, False, False),
    ],
)
async def test_similar_compares_embeddings_with_cosine_similarity(value: Any, threshold: float | None, negate: bool,
                                                                  passes: bool) -> None:
    embedder = FakeEmbedder()
    spec = AssertionSpec("similar", value, threshold=threshold, negate=negate, provider="fake/embed")
    grading = await grade(spec, Observation("the capital of France is Paris."), base_dir=HERE, embed=embedder)
    assert grading.passed is passes, grading.reason
    assert embedder.targets == ["fake/embed"] and "cosine similarity" in grading.reason


async def test_similar_without_an_embedding_model_fails_saying_why() -> None:
    grading = await grade(AssertionSpec("similar", "Paris"), Observation("Paris"), base_dir=HERE,
                          embed=FakeEmbedder(fail=True))
    assert not grading.passed
    assert grading.reason == "the embeddings call failed: openai/text-embedding-3-large: no API key for openai"


async def test_the_fake_server_embeds_similar_texts_close_together(fake_env: dict[str, str]) -> None:
    texts = ["the capital of France is Paris", "Paris is the capital of France", "bananas are yellow"]
    vectors = await embed("fake/text-embedding-3-small", texts, env=fake_env)
    assert len(vectors) == 3 and all(len(v) == 256 for v in vectors)
    assert cosine(vectors[0], vectors[1]) == pytest.approx(1.0)
    assert cosine(vectors[0], vectors[2]) < 0.3
    assert vectors == await embed("fake/text-embedding-3-small", texts, env=fake_env)  # deterministic


async def test_the_fake_servers_embeddings_answer_in_openais_shape(fake_env: dict[str, str]) -> None:
    async with httpx2.AsyncClient() as client:
        url = f"{fake_env['WORKBENCH_FAKE_URL']}/v1/embeddings"
        good = await client.post(url, json={"model": "text-embedding-3-small", "input": "hello world"})
        bad = await client.post(url, json={"model": "m", "input": [1, 2]})
    body = good.json()
    assert good.status_code == 200 and body["object"] == "list" and body["model"] == "text-embedding-3-small"
    assert body["data"][0]["object"] == "embedding" and body["data"][0]["index"] == 0
    assert body["usage"] == {"prompt_tokens": 2, "total_tokens": 2}
    assert bad.status_code == 400 and "'input' must be a string" in bad.json()["error"]["message"]


async def test_an_embeddings_call_that_fails_says_why_in_one_line(fake_env: dict[str, str]) -> None:
    with pytest.raises(EmbeddingError, match="embeddings need an OpenAI-compatible provider"):
        await embed("fake-anthropic/x", ["hi"], env=fake_env)
    with pytest.raises(EmbeddingError, match="no API key for openai"):
        await embed("openai/text-embedding-3-large", ["hi"], env={})


# --- model-graded: prompts, the judge request ---------------------------------------------------------------------


def test_a_grading_chat_is_filled_message_by_message_and_sent_as_system_and_user() -> None:
    prompt = render_prompt(FACTUALITY_PROMPT, {"input": 'Say "hi"', "ideal": "hi", "completion": "hello"})
    request = judge_request(prompt)
    assert request.system is not None and request.system.startswith("You are a precise factuality evaluator")
    [message] = request.messages
    assert '<question>\nSay "hi"\n</question>' in message.content and "<submitted_answer>\nhello" in message.content
    assert request.params.temperature == 0
    closed = judge_request(render_prompt(CLOSED_QA_PROMPT, {"input": "q", "criteria": "c", "completion": "a"}))
    assert closed.system is None and closed.messages[0].content.startswith("You are assessing a submitted answer")
    assert judge_request("plain [text]").messages[0].content == "plain [text]"


def test_a_rubric_prompt_is_rendered_as_nunjucks_with_filters_tags_and_unset_names_empty() -> None:
    template = ("{# the judge #}Grade {{ output | upper }}{% if rubric %} against {{ rubric | replace('x', 'y') }}"
                "{% endif %}{{ unset }}: {{ vars | dump }}")
    rendered = render_prompt(template, {"output": "hi", "rubric": "xx", "vars": {"a": 1}})
    assert rendered == 'Grade HI against yy: {"a":1}'  # dump is JSON.stringify
    chat = render_prompt([{"role": "user", "content": "{{ output | title }}"}], {"output": "paris"})
    assert chat == '[{"role":"user","content":"Paris"}]'


# --- model-graded: each type with a scripted grader ---------------------------------------------------------------

QUESTION = "user: What is the capital of France?"


@pytest.mark.parametrize(
    ("reply", "passes"),
    [
        ("The submission names Paris.\nY\nY", True),
        ("The submission does not name Paris.\nN\nN", False),
        ("I cannot tell.", False),
    ],
)
async def test_model_graded_closedqa_passes_on_a_final_y(reply: str, passes: bool) -> None:
    judge = CannedJudge(reply)
    spec = AssertionSpec("model-graded-closedqa", "names the capital city", provider="fake/judge")
    grading = await grade(spec, Observation("Paris", prompt_text=QUESTION), judge=judge, base_dir=HERE)
    assert (grading.passed, grading.score) == (passes, float(passes))
    [(target, prompt)] = judge.calls
    content = json.loads(prompt)[0]["content"]
    assert target == "fake/judge"
    assert "[Task]: user: What is the capital of France?" in content and "[Submission]: Paris" in content
    assert "[Criterion]: names the capital city" in content


@pytest.mark.parametrize(
    ("reply", "config", "passes", "score"),
    [
        ('{"category": "A", "reason": "a subset of the expert answer"}', {}, True, 1.0),
        ('{"category": "D", "reason": "they disagree"}', {}, False, 0.0),
        ('```json\n{"category": "b", "reason": "superset"}\n```', {"superset": 0.5}, True, 0.5),
        ("(C) The submission has the same details.", {}, True, 1.0),  # promptfoo's older reply form
        ('{"category": "E"}', {"differButFactual": 0}, False, 0.0),
    ],
)
async def test_factuality_scores_the_graders_category(reply: str, config: dict[str, Any], passes: bool,
                                                      score: float) -> None:
    judge = CannedJudge(reply)
    spec = AssertionSpec("factuality", "Paris is the capital of France", config=config)
    grading = await grade(spec, Observation("Paris", prompt_text=QUESTION), judge=judge, base_dir=HERE)
    assert (grading.passed, grading.score) == (passes, score)
    user = json.loads(judge.calls[0][1])[1]["content"]
    assert "<expert_answer>\nParis is the capital of France\n</expert_answer>" in user


async def test_factuality_with_an_unknown_category_fails_saying_why() -> None:
    grading = await grade(AssertionSpec("factuality", "x"), Observation("y"), judge=CannedJudge('{"category": "Z"}'),
                          base_dir=HERE)
    assert (grading.passed, grading.reason) == (False, "the judge gave an invalid category 'Z'")


class ScriptedJudge:
    """Answers each judge call with the next reply of its script."""

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.prompts: list[str] = []

    async def __call__(self, target: str | None, prompt: str) -> str:
        self.prompts.append(prompt)
        return self.replies.pop(0)


async def test_g_eval_asks_for_steps_then_a_score_out_of_10() -> None:
    judge = ScriptedJudge('{"steps": ["Check the answer names a city", "Check it is Paris"]}',
                          '{"score": 8, "reason": "names Paris"}')
    spec = AssertionSpec("g-eval", "The answer names the capital of France")
    grading = await grade(spec, Observation("Paris", prompt_text=QUESTION), judge=judge, base_dir=HERE)
    assert grading.passed is True and grading.score == pytest.approx(0.8)
    assert "**EVALUATION CRITERIA**\nThe answer names the capital of France" in judge.prompts[0]
    assert "- Check the answer names a city\n- Check it is Paris" in judge.prompts[1]
    assert "**Reply**\nParis" in judge.prompts[1]
    low = await grade(spec, Observation("Lyon", prompt_text=QUESTION), base_dir=HERE,
                      judge=ScriptedJudge('{"steps": ["a"]}', '{"score": 6, "reason": "close"}'))
    assert low.passed is False and low.score == pytest.approx(0.6)  # default threshold 0.7


async def test_g_eval_without_steps_fails_saying_why() -> None:
    grading = await grade(AssertionSpec("g-eval", "x"), Observation("y"), judge=CannedJudge("no idea"), base_dir=HERE)
    assert not grading.passed and "evaluation steps are not JSON" in grading.reason


async def test_answer_relevance_embeds_three_generated_questions_against_the_query() -> None:
    judge = CannedJudge("What is the capital of France?")
    embedder = FakeEmbedder()
    obs = Observation("Paris is the capital of France.", vars={"query": "What is the capital of France?"})
    grading = await grade(AssertionSpec("answer-relevance"), obs, judge=judge, base_dir=HERE, embed=embedder)
    assert grading.passed is True and grading.score == pytest.approx(1.0)
    assert len(judge.calls) == 3 and "Answer:Paris is the capital of France.\nQuestion:" in judge.calls[0][1]
    assert embedder.targets == [None]  # the default embedding model
    off = await grade(AssertionSpec("answer-relevance"), obs, judge=CannedJudge("How tall are giraffes?"),
                      base_dir=HERE, embed=embedder)
    assert not off.passed and off.score < 0.7


@pytest.mark.parametrize(
    ("verdicts", "score"),
    [
        ("1. Explanation: stated. Verdict: Yes.\n2. Explanation: not stated. Verdict: No.", 0.5),
        ("...\nFinal verdict for each statement in order: Yes. Yes.", 1.0),
        ("...\nFinal verdict for each statement in order: No.", 0.0),  # one of two: the missing one counts against
    ],
)
async def test_context_faithfulness_checks_statements_against_the_context(verdicts: str, score: float) -> None:
    judge = ScriptedJudge("Paris is the capital of France.\nParis has 2 million people.", verdicts)
    obs = Observation("Paris is the capital; it has 2 million people.",
                      vars={"query": "Tell me about Paris", "context": "Paris is the capital of France."})
    grading = await grade(AssertionSpec("context-faithfulness", threshold=0.9), obs, judge=judge, base_dir=HERE)
    assert grading.passed is (score >= 0.9) and grading.score == pytest.approx(score)
    assert "question:Tell me about Paris\nanswer: Paris is the capital" in judge.prompts[0]
    assert "context:\nParis is the capital of France.\nstatements:\nParis is the capital" in judge.prompts[1]


async def test_context_faithfulness_needs_query_and_context() -> None:
    grading = await grade(AssertionSpec("context-faithfulness"), Observation("x"), judge=CannedJudge("a"),
                          base_dir=HERE)
    assert grading.reason == "context-faithfulness needs the variables 'query' (the question) and 'context'"


async def test_rubric_prompt_replaces_the_grading_prompt() -> None:
    judge = CannedJudge('{"pass": true, "score": 1, "reason": "ok"}')
    spec = AssertionSpec("llm-rubric", "is short", rubric_prompt=[
        {"role": "system", "content": "Grade tersely."},
        {"role": "user", "content": "Output: {{ output }}\nRubric: {{ rubric }}\nTopic: {{topic}}"}])
    grading = await grade(spec, Observation("Paris", vars={"topic": "cities"}), judge=judge, base_dir=HERE)
    assert grading.passed
    system, user = json.loads(judge.calls[0][1])
    assert system == {"role": "system", "content": "Grade tersely."}
    assert user == {"role": "user", "content": "Output: Paris\nRubric: is short\nTopic: cities"}
    closed = CannedJudge("Y")
    await grade(AssertionSpec("model-graded-closedqa", "c", rubric_prompt="Is {{completion}} ok for {{criteria}}?"),
                Observation("Paris"), judge=closed, base_dir=HERE)
    assert closed.calls[0][1] == "Is Paris ok for c?"


async def test_llm_rubric_sends_promptfoos_default_grading_prompt() -> None:
    judge = CannedJudge('{"reason": "greets", "pass": true, "score": 1.0}')
    await grade(AssertionSpec("llm-rubric", "is a greeting"), Observation("Hello!"), judge=judge, base_dir=HERE)
    system, user = json.loads(judge.calls[0][1])
    assert system["content"].startswith("You are grading output according to a user-specified rubric.")
    assert user["content"] == "<Output>\nHello!\n</Output>\n<Rubric>\nis a greeting\n</Rubric>"


@pytest.mark.parametrize("kind", ["model-graded-closedqa", "factuality", "g-eval", "answer-relevance",
                                  "context-faithfulness"])
async def test_every_model_graded_type_without_a_judge_says_so(kind: str) -> None:
    obs = Observation("Paris", vars={"query": "q", "context": "c"})
    grading = await grade(AssertionSpec(kind, "Paris"), obs, base_dir=HERE, embed=FakeEmbedder())
    assert (grading.passed, grading.reason) == (False, "no judge target: set judge: in the suite or provider: on "
                                                       "the assertion")
