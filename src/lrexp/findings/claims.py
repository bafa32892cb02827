"""What each finding claims, on which arms (``conf/study_arm/lm_*``), and how a paired verdict
reads as reproduced, not reproduced or inconclusive."""

from __future__ import annotations

import math
from dataclasses import dataclass

HAGELE = "Hägele et al. 2024"
STRAIGHT = "Bergsma et al. 2025 (Straight to Zero)"
SCHEDULE_FREE = "Defazio et al. 2024; Hägele et al. 2024, Sect. 4.2"

#: full-length arms: each at its own best LR from the grid
GRID_ARMS = (
    "lm_cosine",
    "lm_wsd_linear",
    "lm_wsd_sqrt",
    "lm_linear_d2z",
    "lm_constant",
    "lm_sf_095",
    "lm_sf_090",
)
#: cooldown forks of the lm_constant trunk (at its best LR), and the cosine runs of the
#: envelope's shorter totals (at the cosine's best LR): their LR is another arm's
DERIVED_ARMS = {
    "lm_cooldown_50": "lm_constant",
    "lm_cooldown_100": "lm_constant",
    "lm_cooldown_200": "lm_constant",
    "lm_cooldown_400": "lm_constant",
    "lm_cooldown_at200": "lm_constant",
    "lm_cooldown_at400": "lm_constant",
    "lm_cosine_250": "lm_cosine",
    "lm_cosine_500": "lm_cosine",
}
#: optimizer steps each arm trains itself (a fork's trunk is counted once, in lm_constant)
STEPS = {
    **dict.fromkeys(GRID_ARMS, 1000),
    "lm_cooldown_50": 50,
    "lm_cooldown_100": 100,
    "lm_cooldown_200": 200,
    "lm_cooldown_400": 400,
    "lm_cooldown_at200": 50,
    "lm_cooldown_at400": 100,
    "lm_cosine_250": 250,
    "lm_cosine_500": 500,
}
#: finding 6's envelope: run length -> (the cooldown fork ending there, the cosine run of it)
ENVELOPE = {
    250: ("lm_cooldown_at200", "lm_cosine_250"),
    500: ("lm_cooldown_at400", "lm_cosine_500"),
    1000: ("lm_cooldown_200", "lm_cosine"),
}
LOSS = "val_full/loss"  #: the final weights on the whole validation split
SWA_LOSS = "val_full/loss_swa"  #: the same for the SWA average of lm_constant


@dataclass(frozen=True)
class Claim:
    """One row: ``arm`` (with ``metric``) against ``base`` (with ``base_metric``), paired by
    seed; ``expect`` is what the finding says of the arm: better, better_or_equal, not_better
    or worse (lower loss is better)."""

    key: str
    text: str
    source: str
    arm: str
    base: str
    expect: str
    metric: str = LOSS
    base_metric: str = LOSS

    @property
    def arms(self) -> tuple[str, str]:
        return self.arm, self.base


CLAIMS = (
    Claim(
        "1",
        "WSD (20 % linear cooldown) matches or beats cosine to 10 %",
        HAGELE,
        "lm_wsd_linear",
        "lm_cosine",
        "better_or_equal",
    ),
    Claim(
        "2",
        "a 1-sqrt cooldown beats a linear one of the same length (20 %)",
        HAGELE,
        "lm_wsd_sqrt",
        "lm_wsd_linear",
        "better",
    ),
    Claim(
        "3a",
        "a 20 % cooldown beats a 5 % one (forks of one constant trunk)",
        HAGELE,
        "lm_cooldown_200",
        "lm_cooldown_50",
        "better",
    ),
    Claim(
        "3b",
        "past 20 % a longer cooldown gains little: 40 % is no better than 20 %",
        HAGELE,
        "lm_cooldown_400",
        "lm_cooldown_200",
        "not_better",
    ),
    Claim(
        "5a",
        "SWA on a constant LR improves it",
        HAGELE,
        "lm_constant",
        "lm_constant",
        "better",
        metric=SWA_LOSS,
    ),
    Claim(
        "5b",
        "... but does not reach a real cooldown (a 20 % fork)",
        HAGELE,
        "lm_constant",
        "lm_cooldown_200",
        "worse",
        metric=SWA_LOSS,
    ),
    Claim(
        "6a",
        "a cooldown fork at 250 steps matches a separate cosine run of 250",
        HAGELE,
        "lm_cooldown_at200",
        "lm_cosine_250",
        "better_or_equal",
    ),
    Claim(
        "6b", "... at 500 steps", HAGELE, "lm_cooldown_at400", "lm_cosine_500", "better_or_equal"
    ),
    Claim("6c", "... at 1,000 steps", HAGELE, "lm_cooldown_200", "lm_cosine", "better_or_equal"),
    Claim(
        "7",
        "linear decay to zero beats cosine to 10 %",
        STRAIGHT,
        "lm_linear_d2z",
        "lm_cosine",
        "better",
    ),
    Claim(
        "8a",
        "schedule-free AdamW: betas (0.95, 0.99) beat (0.9, 0.95)",
        SCHEDULE_FREE,
        "lm_sf_095",
        "lm_sf_090",
        "better",
    ),
    Claim(
        "8b",
        "a tuned WSD cooldown (1-sqrt) matches or beats schedule-free AdamW",
        SCHEDULE_FREE,
        "lm_wsd_sqrt",
        "lm_sf_095",
        "better_or_equal",
    ),
)
#: finding 4 compares best LRs of the grid, not losses
LR_RATIO_CLAIM = ("4", "the best constant LR is about half the best cosine peak LR", HAGELE)

#: verdict -> outcome, per expectation
OUTCOMES = {
    "better": {"better": "reproduced", "worse": "not reproduced", "equivalent": "not reproduced"},
    "better_or_equal": {
        "better": "reproduced",
        "equivalent": "reproduced",
        "worse": "not reproduced",
    },
    "not_better": {"equivalent": "reproduced", "worse": "reproduced", "better": "not reproduced"},
    "worse": {"worse": "reproduced", "better": "not reproduced", "equivalent": "not reproduced"},
}


def outcome(expect: str, verdict: str) -> str:
    """reproduced / not reproduced / inconclusive for a claim's verdict."""
    return OUTCOMES[expect].get(verdict, "inconclusive")


def lr_ratio_outcome(ratio: float) -> str:
    """Finding 4: reproduced when the constant's best LR is within a factor sqrt(2) of half the
    cosine's (on a grid of factor-2 steps: exactly the grid point below), else not."""
    return "reproduced" if abs(math.log2(ratio / 0.5)) <= 0.5 else "not reproduced"


def arms_for(keys: set[str] | None) -> list[str]:
    """Every arm the selected findings need (all with ``keys`` None), grid arms first."""
    claims = [c for c in CLAIMS if keys is None or c.key.rstrip("abc") in keys]
    wanted = {arm for c in claims for arm in c.arms}
    if keys is None or "4" in keys:
        wanted |= {"lm_constant", "lm_cosine"}
    if keys is None or "laws" in keys:  # the laws' LR, and the synthesized schedule's rivals
        wanted |= {"lm_constant", "lm_cosine", "lm_wsd_linear"}
    wanted |= {DERIVED_ARMS[a] for a in wanted if a in DERIVED_ARMS}
    ordered = [a for a in GRID_ARMS if a in wanted]
    return ordered + [a for a in DERIVED_ARMS if a in wanted]
