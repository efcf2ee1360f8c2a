import json


def call_api(prompt, options, context):
    """A grader that passes every output of three words or fewer and explains itself."""
    output = prompt.split("<Output>")[-1].split("</Output>")[0].strip() if "<Output>" in prompt else ""
    words = len(output.split())
    return {"output": json.dumps({"pass": words <= 3, "score": 1.0 if words <= 3 else 0.0,
                                  "reason": f"{words} words"})}
