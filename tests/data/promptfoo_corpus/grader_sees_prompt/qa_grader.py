import json


def call_api(prompt, options, context):
    """Answers Y when the closed-QA task is the test's chat prompt as promptfoo renders it (indented JSON)."""
    assert prompt.startswith('[{"role":"system","content":'), prompt[:40]  # promptfoo's compact grading chat
    content = json.loads(prompt)[0]["content"]
    task = content.split("[Task]: ")[1].split("\n***")[0]
    sent = [{"role": "system", "content": "You name things."}, {"role": "user", "content": "Name a fruit"}]
    return {"output": "reasoning\nY" if task == json.dumps(sent, indent=2) else f"task was {task!r}\nN"}
