"""API keys: 401 without a valid key, 403 for an action the key may not take."""

from services.intake.core.auth import ApiKey, Denied, KeyRing, KeyRingConfig, hash_key
from services.intake.core.commands import Action

RING = KeyRing(
    KeyRingConfig(
        keys=[
            ApiKey(name="helpdesk", sha256=hash_key("secret-1"), actions=frozenset(Action)),
            ApiKey(name="chatbot", sha256=hash_key("secret-2"), actions=frozenset({Action.CREATE, Action.RESPOND})),
        ]
    )
)


def test_valid_key_and_action():
    key = RING.authorize("Bearer secret-2", Action.RESPOND)
    assert isinstance(key, ApiKey) and key.name == "chatbot"
    assert RING.authorize("bearer  secret-1 ", Action.RESOLVE).name == "helpdesk"


def test_missing_or_wrong_key_is_401():
    for header in (None, "", "Bearer", "Bearer ", "Basic secret-1", "secret-1", "Bearer nope"):
        outcome = RING.authorize(header, Action.CREATE)
        assert isinstance(outcome, Denied) and outcome.status == 401, header


def test_under_privileged_key_is_403_and_names_the_key_not_the_secret():
    outcome = RING.authorize("Bearer secret-2", Action.RESOLVE)
    assert isinstance(outcome, Denied) and outcome.status == 403
    assert "chatbot" in outcome.reason and "secret-2" not in outcome.reason
