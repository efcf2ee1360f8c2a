"""Policy: defaults, per-provider and per-target overrides, the [policy] file section, flags on top."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.core.config import load_settings
from workbench.core.errors import ConfigError
from workbench.core.policy import PolicySet


def test_overrides_merge_field_by_field_target_over_provider_over_defaults(tmp_path: Path) -> None:
    path = tmp_path / "workbench.toml"
    path.write_text('''
[policy]
fallbacks = ["anthropic/claude-sonnet-4-5"]
[policy.timeouts]
ttft = 30
[policy.targets.openai.timeouts]
idle = 5
[policy.targets."openai/o3".timeouts]
ttft = 300
[policy.targets."openai/o3".rate_limit]
rpm = 50
''', encoding="utf-8")
    policies = load_settings(path, user_file=tmp_path / 'no-user.toml').policies
    o3, mini, other = (policies.for_target(t) for t in ("openai/o3", "openai/gpt-4.1-mini", "gemini/x"))
    assert (o3.timeouts.ttft, o3.timeouts.idle, o3.timeouts.connect, o3.rate_limit.rpm) == (300, 5, 10, 50)
    assert (mini.timeouts.ttft, mini.timeouts.idle, mini.rate_limit.rpm) == (30, 5, None)
    assert (other.timeouts.ttft, other.timeouts.idle) == (30, 60)
    assert other.fallbacks == ("anthropic/claude-sonnet-4-5",)
    flagged = policies.with_defaults(retry={"max_retries": 0}).for_target("openai/o3")
    assert flagged.retry.max_retries == 0 and flagged.timeouts.ttft == 300


def test_no_file_means_defaults(tmp_path: Path) -> None:
    assert load_settings(cwd=tmp_path, user_file=tmp_path / "nope.toml").policies == PolicySet()


@pytest.mark.parametrize(("text", "expected"), [
    ("[policy.timeouts]\nttft = -1\n", "timeouts.ttft"),
    ("[policy]\nretries = 3\n", "retries"),
    ("[policy.targets.openai.retry]\nmax_retries = 'x'\n", "max_retries"),
    ("[policy\n", "line 1"),
])
def test_bad_policy_names_the_file_and_the_key(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "workbench.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(path, user_file=tmp_path / 'no-user.toml')
    assert str(path) in str(err.value) and expected in str(err.value) and err.value.hint
