"""The names every part of the bot shares, each written once: the distress states, the participant
flags and the medical gate they drive, and the words carriers act on.

A leaf module (nothing else from the bot is imported), so the matcher, the risk layer, the content
checker, the nudge planner and the conversation engine all read the same lists.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Literal, Protocol, get_args

# --- distress states ----------------------------------------------------------------------------

# What a text is matched to and what a skill helps with. The lexicon (skills_library/rules/
# lexicon.yaml) gives cues for each, the learned state model is trained on exactly these plus
# "none", and the model gate of rules/context.yaml names some of them.
State = Literal[
    "anxiety", "panic", "anger", "sadness", "stress", "craving", "lapse",
    "sleep", "dissociation", "loneliness", "rumination", "shame", "conflict",
]
STATES: tuple[str, ...] = get_args(State)

# --- participant flags and the medical gate -------------------------------------------------------

# Flags a counselor sets at enrollment. A skill's `avoid_if` hides it from anyone with any of the
# listed flags; its `requires` shows it only to people who have every listed flag (medical
# clearance). `eating_disorder` (current or past disordered eating) hides skills whose cold water
# or intense exercise is unsafe with it (TIPP).
Flag = Literal[
    "heart_condition", "lung_condition", "pregnancy", "eating_disorder",
    "cleared_cold_water", "cleared_intense_exercise", "trauma_sensitive",
]
FLAGS: tuple[str, ...] = get_args(Flag)


class Gated(Protocol):
    """Anything with a skill's medical gate."""

    @property
    def avoid_if(self) -> Sequence[str]: ...

    @property
    def requires(self) -> Sequence[str]: ...


def medically_allowed(skill: Gated, flags: Collection[str]) -> bool:
    """True when a participant with these flags may be offered the skill: none of its `avoid_if`
    flags, all of its `requires` flags. Every place that offers a skill asks this."""
    return not any(f in flags for f in skill.avoid_if) and all(f in flags for f in skill.requires)


# --- carrier words ----------------------------------------------------------------------------------

# One-word replies that carriers and Twilio act on, whole body and any case: Twilio's default
# opt-out, opt-in and help keywords (https://www.twilio.com/docs/messaging/tutorials/advanced-opt-out).
# A participant who copies an opt-out word back is opted out of every text, so no text the bot
# sends may contain one outside the opt-out instruction itself.
OPT_OUT_WORDS: tuple[str, ...] = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT")
OPT_IN_WORDS: tuple[str, ...] = ("START", "YES", "UNSTOP")
HELP_WORDS: tuple[str, ...] = ("HELP", "INFO")
