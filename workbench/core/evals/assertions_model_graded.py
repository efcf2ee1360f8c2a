"""The model-graded assertions, with promptfoo's grading prompts and its reading of the grader's reply:
``llm-rubric``, ``model-graded-closedqa``, ``factuality`` (``model-graded-factuality``), ``g-eval``,
``answer-relevance`` (also embeddings) and ``context-faithfulness``.

A grading prompt is a text or a chat (a JSON list of ``{role, content}``, as promptfoo writes them); its
``{{ name }}`` placeholders are filled with the grading's values (the test's variables too, where promptfoo
passes them). ``rubricPrompt`` (the assertion's, else the test's ``options.rubricPrompt``) replaces the default
prompt where promptfoo honours it: every type here; ``g-eval`` takes ``{steps, evaluate}``,
``context-faithfulness`` a list of two prompts (statements, then verdicts).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from workbench.core.evals.checks import Check, CheckFn, Context, Unusable, quote
from workbench.core.evals.embeddings import EmbeddingError, cosine
from workbench.core.templating import TemplateError, render

NO_JUDGE = "no judge target: set judge: in the suite or provider: on the assertion"

DEFAULT_GRADING_PROMPT = json.dumps([
    {"role": "system", "content": (
        "You are grading output according to a user-specified rubric. If the statement in the rubric is true, "
        "then the output passes the test. You respond with a JSON object with this structure: {reason: string, "
        "pass: boolean, score: number}\n\nExamples:\n\n<Output>Hello world</Output>\n<Rubric>Content contains a "
        "greeting</Rubric>\n{\"reason\": \"the content contains the word 'Hello'\", \"pass\": true, \"score\": "
        "1.0}\n\n<Output>Avast ye swabs, repel the invaders!</Output>\n<Rubric>Does not speak like a pirate"
        "</Rubric>\n{\"reason\": \"'avast ye' is a common pirate term\", \"pass\": false, \"score\": 0.0}")},
    {"role": "user", "content": "<Output>\n{{ output }}\n</Output>\n<Rubric>\n{{ rubric }}\n</Rubric>"},
])

CLOSED_QA_PROMPT = json.dumps([{"role": "system", "content": (
    "You are assessing a submitted answer on a given task based on a criterion. Here is the data:\n"
    "[BEGIN DATA]\n***\n[Task]: {{input}}\n***\n[Submission]: {{completion}}\n***\n[Criterion]: {{criteria}}\n"
    "***\n[END DATA]\nDoes the submission meet the criterion? First, write out in a step by step manner your "
    "reasoning about the criterion to be sure that your conclusion is correct. Avoid simply stating the correct "
    "answers at the outset. Then print only the single character \"Y\" or \"N\" (without quotes or punctuation) "
    "on its own line corresponding to the correct answer. At the end, repeat just the letter again by itself on "
    "a new line.\n\n    Reasoning:")}])

_FACTUALITY_CATEGORIES = {
    "A": "The submitted answer is a subset of the expert answer and is fully consistent with it.",
    "B": "The submitted answer is a superset of the expert answer and is fully consistent with it.",
    "C": "The submitted answer contains all the same details as the expert answer.",
    "D": "There is a disagreement between the submitted answer and the expert answer.",
    "E": "The answers differ, but these differences don't matter from the perspective of factuality.",
}
FACTUALITY_PROMPT = json.dumps([
    {"role": "system", "content": (
        "You are a precise factuality evaluator that compares a submitted answer to an expert answer.\n\n"
        "Your task is to analyze the factual content while ignoring differences in style, grammar, or "
        "punctuation.\nYou must categorize the submission into one of these options:\n\n"
        + "\n".join(f"({k}) {v}" for k, v in _FACTUALITY_CATEGORIES.items())
        + "\n\nRespond ONLY with a JSON object in this format:\n{\n  \"category\": \"[LETTER]\",\n  \"reason\": "
        "\"[DETAILED EXPLANATION]\"\n}\n\n- The \"category\" must be a single letter A, B, C, D, or E.\n"
        "- Provide a clear, detailed explanation in the \"reason\" field.\n"
        "- Your response must be valid JSON with no additional text.")},
    {"role": "user", "content": (
        "I need you to compare these answers:\n\n<question>\n{{input}}\n</question>\n\n<expert_answer>\n{{ideal}}\n"
        "</expert_answer>\n\n<submitted_answer>\n{{completion}}\n</submitted_answer>\n\nPlease analyze the factual "
        "relationship between these answers according to the categories you've been given.")},
])
_FACTUALITY_CONFIG = {"A": "subset", "B": "superset", "C": "agree", "D": "disagree", "E": "differButFactual"}

GEVAL_STEPS_PROMPT = (
    "Given an evaluation criteria which outlines how you should judge a piece of text, generate 3-4 concise "
    "evaluation steps applicable to any text based on the criteria below.\n\n**EVALUATION CRITERIA**\n{{criteria}}"
    "\n\n**OUTPUT FORMAT**\nIMPORTANT:\n- Return output ONLY as a minified JSON object.\n- The JSON object must "
    "contain a single key, \"steps\", whose value is a list of strings.\n- Each string must represent one "
    "evaluation step.\n- Do NOT include any explanations, commentary, extra text, or additional formatting.\n\n"
    "Format:\n{\"steps\": <list_of_strings>}\n\nExample:\n{\"steps\":[\"<Evaluation Step 1>\",\"<Evaluation Step "
    "2>\",\"<Evaluation Step 3>\",\"<Evaluation Step 4>\"]}\n\nHere are the 3-4 concise evaluation steps, "
    "formatted as required in a minified JSON:\nJSON:\n")
GEVAL_EVALUATE_PROMPT = (
    "You will be given one Reply for a Prompt below. Your task is to rate the Reply on one metric.\nPlease make "
    "sure you read and understand these instructions carefully. Please keep this document open while reviewing, "
    "and refer to it as needed.\n\n**Evaluation Criteria**\n{{criteria}}\n\n**Evaluation Steps**\n- {{steps}}\n"
    "Given the evaluation steps, return a JSON with two keys: \n  1) a \"score\" key ranging from 0 - {{maxScore}}"
    ", with {{maxScore}} being that Reply follows the Evaluation Criteria outlined in the Evaluation Steps and 0 "
    "being that Reply does not;\n  2) a \"reason\" key, a reason for the given score, but DO NOT QUOTE THE SCORE "
    "in your reason. Please mention specific information from Prompt and Reply in your reason, but be very "
    "concise with it!\n\n**Prompt**\n{{input}}\n\n**Reply**\n{{output}}\n\n**OUTPUT FORMAT**\nIMPORTANT: \n- "
    "Return output ONLY as a minified JSON object.\n- The JSON object must contain exactly two keys: \"score\" and "
    "\"reason\".\n- No additional words, explanations, or formatting are needed.\n- Absolutely no additional "
    "text, explanations, line breaks, or formatting outside the JSON object are allowed.\n\nExample JSON:\n"
    "{\"score\":0,\"reason\":\"The text of reply does not follow the evaluation criteria provided.\"}\n\nHere is "
    "the final evaluation in the required minified JSON format:\nJSON:\n")
GEVAL_MAX_SCORE = 10

ANSWER_RELEVANCY_PROMPT = (
    "Generate question for the given answer.\nAnswer:\nThe PSLV-C56 mission is scheduled to be launched on Sunday, "
    "30 July 2023 at 06:30 IST / 01:00 UTC. It will be launched from the Satish Dhawan Space Centre, Sriharikota, "
    "Andhra Pradesh, India\nQuestion: When is the scheduled launch date and time for the PSLV-C56 mission, and "
    "where will it be launched from?\n\nAnswer:{{answer}}\nQuestion:")
FAITHFULNESS_STATEMENTS_PROMPT = (
    "Given a question and answer, create one or more statements from each sentence in the given answer.\n"
    "question: Who was  Albert Einstein and what is he best known for?\nanswer: He was a German-born theoretical "
    "physicist, widely acknowledged to be one of the greatest and most influential physicists of all time. He was "
    "best known for developing the theory of relativity, he also made important contributions to the development "
    "of the theory of quantum mechanics.\nstatements:\nAlbert Einstein was born in Germany.\nAlbert Einstein was "
    "best known for his theory of relativity.\nquestion: Cadmium Chloride is slightly soluble in this chemical, it "
    "is also called what?\nanswer: alcohol\nstatements:\nCadmium Chloride is slightly soluble in alcohol.\n"
    "question: Were Shahul and Jithin of the same nationality?\nanswer: They were from different countries.\n"
    "statements:\nShahul and Jithin were from different countries.\nquestion:{{question}}\nanswer: {{answer}}\n"
    "statements:\n")
FAITHFULNESS_VERDICTS_PROMPT = (
    "Prompt: Natural language inference\nConsider the given context and following statements, then determine "
    "whether they are supported by the information present in the context.Provide a brief explanation for each "
    "statement before arriving at the verdict (Yes/No). Provide a final verdict for each statement in order at the "
    "end in the given format. Do not deviate from the specified format.\n\nContext:\nJohn is a student at XYZ "
    "University. He is pursuing a degree in Computer Science. He is enrolled in several courses this semester, "
    "including Data Structures, Algorithms, and Database Management. John is a diligent student and spends a "
    "significant amount of time studying and completing assignments. He often stays late in the library to work on "
    "his projects.\nstatements:\n1. John is majoring in Biology.\n2. John is taking a course on Artificial "
    "Intelligence.\n3. John is a dedicated student.\n4. John has a part-time job.\n5. John is interested in "
    "computer programming.\n\nAnswer:\n1. John is majoring in Biology.\nExplanation: John's major is explicitly "
    "mentioned as Computer Science. There is no information suggesting he is majoring in Biology.  Verdict: No.\n"
    "2. John is taking a course on Artificial Intelligence.\nExplanation: The context mentions the courses John is "
    "currently enrolled in, and Artificial Intelligence is not mentioned. Therefore, it cannot be deduced that John "
    "is taking a course on AI. Verdict: No.\n3. John is a dedicated student.\nExplanation: The prompt states that "
    "he spends a significant amount of time studying and completing assignments. Additionally, it mentions that he "
    "often stays late in the library to work on his projects, which implies dedication. Verdict: Yes.\n4. John has "
    "a part-time job.\nExplanation: There is no information given in the context about John having a part-time "
    "job. Therefore, it cannot be deduced that John has a part-time job.  Verdict: No.\n5. John is interested in "
    "computer programming.\nExplanation: The context states that John is pursuing a degree in Computer Science, "
    "which implies an interest in computer programming. Verdict: Yes.\nFinal verdict for each statement in order: "
    "No. No. Yes. No. Yes.\ncontext:\n{{context}}\nstatements:\n{{statements}}\nAnswer:\n")
_FINAL_VERDICTS = "final verdict for each statement in order:"

ANSWER_RELEVANCE_THRESHOLD = 0.7
GEVAL_THRESHOLD = 0.7


# --- prompts and the judge --------------------------------------------------------------------------------------


def render_prompt(template: Any, values: Mapping[str, Any]) -> str:
    """A grading prompt rendered with ``values`` as promptfoo renders it (Nunjucks: filters and tags; an unset
    name is empty); a chat (a list, or a JSON list in a text) is rendered message by message and given back as
    compact JSON, as promptfoo does."""
    chat = template
    if isinstance(template, str) and template.lstrip().startswith("["):
        try:
            chat = json.loads(template)
        except ValueError:
            chat = template
    if isinstance(chat, list) and all(isinstance(m, dict) and "content" in m for m in chat):
        return json.dumps([{**m, "content": _fill(str(m["content"]), values)} for m in chat], ensure_ascii=False,
                          separators=(",", ":"))  # promptfoo's JSON.stringify: what a grader receives
    if not isinstance(template, str):
        raise Unusable(f"a grading prompt is a text or a list of messages, not {type(template).__name__}")
    return _fill(template, values)


def _fill(text: str, values: Mapping[str, Any]) -> str:
    """``text`` rendered as promptfoo renders a grading prompt: Nunjucks (filters, tags; an unset name is empty)."""
    try:
        return render(text, values)
    except TemplateError as exc:
        raise Unusable(f"the grading prompt: {exc}") from None


async def ask(ctx: Context, prompt: str) -> str:
    """The judge's reply to ``prompt`` (the assertion's ``provider``, else the suite's judge)."""
    if ctx.judge is None:
        raise Unusable(NO_JUDGE)
    try:
        return await ctx.judge(ctx.spec.provider, prompt)
    except Exception as exc:  # any failure of the judge call is this assertion's failure, not the run's
        raise Unusable(f"the judge call failed: {type(exc).__name__}: {exc}") from None


def _rubric(ctx: Context, default: Any) -> Any:
    return ctx.spec.rubric_prompt if ctx.spec.rubric_prompt is not None else default


def _value_text(ctx: Context) -> str:
    if not isinstance(ctx.value, str | int | float) or isinstance(ctx.value, bool) or str(ctx.value) == "":
        raise Unusable(f"{ctx.spec.label} needs a text value")
    return str(ctx.value)


def _threshold_note(threshold: float | None) -> str:
    return "" if threshold is None else f" with score >= {threshold:g}"


def _json_objects(text: str) -> list[dict[str, Any]]:
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    position = 0
    while (start := text.find("{", position)) >= 0:
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            position = start + 1
            continue
        if isinstance(value, dict):
            found.append(value)
        position = end
    return found


# --- llm-rubric ---------------------------------------------------------------------------------------------------


async def _llm_rubric(ctx: Context) -> Check:
    rubric = _value_text(ctx)
    values = {"output": ctx.obs.text, "rubric": rubric, **ctx.obs.vars}
    reply = await ask(ctx, render_prompt(_rubric(ctx, DEFAULT_GRADING_PROMPT), values))
    passed, score, reason = judge_verdict(reply, ctx.spec.threshold)
    expected = f"output meeting the rubric {quote(rubric, 80)}" + _threshold_note(ctx.spec.threshold)
    return Check(passed, score, expected, f"judge: pass={passed}, score {score:g}: {reason}")


def judge_verdict(reply: str, threshold: float | None) -> tuple[bool, float, str]:
    """Pass, score and reason from a judge reply: the first JSON object with ``pass`` or ``score``.

    Without ``score`` the score is 1 or 0 from ``pass``; without ``pass``, pass is score >= threshold
    (0.5 without one). With a threshold, pass also needs score >= threshold.
    """
    found = [v for v in _json_objects(reply) if "pass" in v or "score" in v]
    if not found:
        raise Unusable(f"the judge reply has no verdict: {quote(reply)}")
    parsed = found[0]
    score = _number(parsed.get("score"))
    bar = threshold if threshold is not None else 0.5
    passed = _truthy(parsed["pass"]) if "pass" in parsed else score is not None and score >= bar
    score = float(passed) if score is None else min(1.0, max(0.0, score))
    if threshold is not None:
        passed = passed and score >= threshold
    return passed, score, str(parsed.get("reason", "no reason given"))


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "yes", "pass", "y", "1"}
    return bool(value)


# --- model-graded-closedqa, factuality ----------------------------------------------------------------------------


async def _closed_qa(ctx: Context) -> Check:
    """Passes when the grader's reply ends with ``Y``."""
    criteria = _value_text(ctx)
    values = {"input": ctx.obs.prompt_text, "criteria": criteria, "completion": ctx.obs.text, **ctx.obs.vars}
    reply = await ask(ctx, render_prompt(_rubric(ctx, CLOSED_QA_PROMPT), values))
    end = reply.rstrip()
    passed = end.endswith("Y")
    meaning = ("meets the criterion" if passed else "does not meet the criterion" if end.endswith("N")
               else "malformed grader reply")
    return Check(passed, float(passed), f"output meeting the criterion {quote(criteria, 80)}",
                 f"judge: {meaning}: {quote(reply)}")


async def _factuality(ctx: Context) -> Check:
    """The grader's category A-E (JSON ``category``, else promptfoo's older ``(A)`` form); scores per category
    from ``config`` (promptfoo's ``factuality`` scores: subset, superset, agree, disagree, differButFactual;
    1, 1, 1, 0, 1 by default); passes when the category's score is above 0."""
    ideal = _value_text(ctx)
    values = {"input": ctx.obs.prompt_text, "ideal": ideal, "completion": ctx.obs.text, **ctx.obs.vars}
    reply = await ask(ctx, render_prompt(_rubric(ctx, FACTUALITY_PROMPT), values))
    category, reason = _factuality_category(reply)
    weights = {key: 0.0 if key == "D" else 1.0 for key in _FACTUALITY_CATEGORIES}
    for key, name in _FACTUALITY_CONFIG.items():
        if (configured := _number(ctx.spec.config.get(name))) is not None:
            weights[key] = configured
    score = weights[category]
    return Check(score > 0, score, f"output factually consistent with {quote(ideal, 80)}",
                 f"judge: category {category}: {reason}")


def _factuality_category(reply: str) -> tuple[str, str]:
    for parsed in _json_objects(reply):
        category = parsed.get("category")
        if isinstance(category, str):
            option = category.strip().upper()
            if option not in _FACTUALITY_CATEGORIES:
                raise Unusable(f"the judge gave an invalid category {option!r}")
            reason = str(parsed.get("reason") or "").strip()
            return option, reason or f"Category {option}: {_FACTUALITY_CATEGORIES[option]}"
    legacy = re.search(r"\s*\(?([a-eA-E])\)", reply)
    if legacy is None:
        raise Unusable(f"the judge reply has no factuality category: {quote(reply)}")
    after = re.search(r"\)\s*(.*)", reply, re.DOTALL)
    return legacy[1].upper(), (after[1].strip() if after and after[1].strip() else reply)


# --- g-eval -------------------------------------------------------------------------------------------------------


async def _g_eval(ctx: Context) -> Check:
    """Steps from the criteria, then a score 0-10 (scaled to 0-1) against them; a list of criteria scores
    their mean. Passes at threshold (0.7 by default, also for 0, as promptfoo's ``threshold || 0.7``)."""
    criteria = ctx.value if isinstance(ctx.value, list) else [_value_text(ctx)]
    if not criteria or not all(isinstance(c, str) and c for c in criteria):
        raise Unusable("g-eval needs a criterion (a text, or a list of texts)")
    threshold = ctx.spec.threshold or GEVAL_THRESHOLD
    scored = [await _g_eval_one(ctx, criterion) for criterion in criteria]
    score = sum(s for s, _ in scored) / len(scored)
    return Check(score >= threshold, score, f"G-Eval score >= {threshold:g} for {criteria}",
                 "judge: " + " | ".join(f"{s:.2f}: {reason}" for s, reason in scored))


async def _g_eval_one(ctx: Context, criterion: str) -> tuple[float, str]:
    prompts = ctx.spec.rubric_prompt if isinstance(ctx.spec.rubric_prompt, dict) else {}
    reply = await ask(ctx, render_prompt(prompts.get("steps", GEVAL_STEPS_PROMPT), {"criteria": criterion}))
    match = re.search(r"\{\"steps\".+\}", reply)
    try:
        steps = json.loads(match[0])["steps"] if match else None
    except ValueError:
        steps = None
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) and s.strip() for s in steps):
        raise Unusable(f"the judge's evaluation steps are not JSON {{\"steps\": [...]}}: {quote(reply)}")
    values = {"criteria": criterion, "steps": "\n- ".join(steps), "maxScore": str(GEVAL_MAX_SCORE),
              "input": ctx.obs.prompt_text, "output": ctx.obs.text}
    reply = await ask(ctx, render_prompt(prompts.get("evaluate", GEVAL_EVALUATE_PROMPT), values))
    found = re.search(r"\{.+\}", reply)
    try:
        result = json.loads(found[0]) if found else None
    except ValueError:
        result = None
    raw = _number(result.get("score")) if isinstance(result, dict) else None
    if raw is None or not 0 <= raw <= GEVAL_MAX_SCORE:
        raise Unusable(f"the judge's G-Eval result has no score from 0 to {GEVAL_MAX_SCORE}: {quote(reply)}")
    return raw / GEVAL_MAX_SCORE, str(result.get("reason", "")) if isinstance(result, dict) else ""


# --- answer-relevance, context-faithfulness -----------------------------------------------------------------------


async def _answer_relevance(ctx: Context) -> Check:
    """Three questions the grader writes for the output, each embedded and compared with the query (the
    ``query`` variable, else the prompt): the mean cosine similarity >= threshold (0.7)."""
    query = ctx.obs.vars.get("query") or ctx.obs.prompt_text
    threshold = ctx.spec.threshold if ctx.spec.threshold is not None else ANSWER_RELEVANCE_THRESHOLD
    prompt = render_prompt(_rubric(ctx, ANSWER_RELEVANCY_PROMPT), {"answer": ctx.obs.text})
    questions = [await ask(ctx, prompt) for _ in range(3)]
    if ctx.embed is None:
        raise Unusable("answer-relevance needs an embedding model, and this grading has none")
    try:
        vectors = await ctx.embed(None, [query, *questions])
    except EmbeddingError as exc:
        raise Unusable(f"the embeddings call failed: {exc}") from None
    similarity = sum(cosine(vectors[0], v) for v in vectors[1:]) / len(questions)
    return Check(similarity >= threshold - 1e-12, similarity, f"relevance >= {threshold:g} to {quote(query, 80)}",
                 f"relevance {similarity:.3f} (questions: {' | '.join(q.strip() for q in questions)})")


async def _context_faithfulness(ctx: Context) -> Check:
    """Statements the grader draws from the output, then its verdict on each against the ``context`` variable:
    1 - (unsupported + missing verdicts) / statements >= threshold (0 by default)."""
    query, context = ctx.obs.vars.get("query"), ctx.obs.vars.get("context")
    if query is None or context is None:
        raise Unusable("context-faithfulness needs the variables 'query' (the question) and 'context'")
    prompts = ctx.spec.rubric_prompt if isinstance(ctx.spec.rubric_prompt, list) else []
    first = _message_text(prompts[0]) if prompts else FAITHFULNESS_STATEMENTS_PROMPT
    second = _message_text(prompts[1]) if len(prompts) > 1 else FAITHFULNESS_VERDICTS_PROMPT
    values = {"question": query, "answer": ctx.obs.text, **ctx.obs.vars}
    reply = await ask(ctx, render_prompt(first, values))
    statements = [line.strip() for line in reply.split("\n") if line.strip()]
    if not statements:
        raise Unusable("the judge gave no statements to check")
    values = {"context": context, "statements": "\n".join(statements), **ctx.obs.vars}
    verdicts = (await ask(ctx, render_prompt(second, values))).lower().strip()
    score = _faithfulness(verdicts, len(statements))
    threshold = ctx.spec.threshold or 0.0
    return Check(score >= threshold - 1e-12, score, f"faithfulness >= {threshold:g} to the context",
                 f"faithfulness {score:.3f} over {len(statements)} statement(s)")


def _message_text(prompt: Any) -> str:
    return str(prompt.get("content", "")) if isinstance(prompt, dict) else str(prompt)


def _faithfulness(verdicts: str, statements: int) -> float:
    if _FINAL_VERDICTS in verdicts:
        parts = [p for p in verdicts[verdicts.index(_FINAL_VERDICTS) + len(_FINAL_VERDICTS):].split(".") if p.strip()]
        if not parts or not all(re.search(r"\b(?:yes|no)\b", p) for p in parts):
            raise Unusable("the judge's verdicts could not be read")
        unsupported = sum("yes" not in p for p in parts)
        return min(1.0, max(0.0, 1 - (unsupported + max(0, statements - len(parts))) / statements))
    no, yes = verdicts.count("verdict: no"), verdicts.count("verdict: yes")
    if no + yes == 0:
        raise Unusable("the judge's verdicts could not be read")
    return min(1.0, max(0.0, 1 - (no + max(0, statements - no - yes)) / statements))


CHECKS: dict[str, CheckFn] = {
    "llm-rubric": _llm_rubric,
    "model-graded-closedqa": _closed_qa,
    "factuality": _factuality,
    "model-graded-factuality": _factuality,
    "g-eval": _g_eval,
    "answer-relevance": _answer_relevance,
    "context-faithfulness": _context_faithfulness,
}
