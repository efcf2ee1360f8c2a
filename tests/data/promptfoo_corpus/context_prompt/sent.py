import json


def get_assert(output, context):
    """context['prompt'] of a chat prompt: its messages as promptfoo's JSON (two-space indent)."""
    chat = [{"role": "system", "content": "You name things."},
            {"role": "user", "content": f"Name a {context['vars']['thing']}"}]
    return context["prompt"] == json.dumps(chat, indent=2)
