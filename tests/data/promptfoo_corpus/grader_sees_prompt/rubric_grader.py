import json


def call_api(prompt, options, context):
    """A rubric grader with a word limit from its config: the output is in the grading chat's user message."""
    content = json.loads(prompt)[1]["content"]
    output = content.split("<Output>\n")[1].split("\n</Output>")[0]
    words = len(output.split())
    limit = options["config"]["most_words"]
    return {"output": json.dumps({"pass": words <= limit, "score": 1 if words <= limit else 0,
                                  "reason": f"{words} words, at most {limit}"})}
