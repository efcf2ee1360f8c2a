def get_assert(output, context):
    words = output.split()
    return {"pass": len(words) == 4, "score": 1.0, "reason": f"{len(words)} words for {context['vars']['count']}"}


def digit_share(output, context):
    return sum(ch.isdigit() for ch in output) / max(len(output), 1)
