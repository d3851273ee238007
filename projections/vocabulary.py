"""The verbs, activity types and extensions the projections read (schemas/profiles/...json).

Published IRIs are reused where they exist (ADL, Tin Can registry); the few this LRS defines
live under one base IRI and are documented in the profile file.
"""

from __future__ import annotations

PROFILE_BASE = "https://w3id.org/xapi/personalised-learning"

# Goals and reflections are ordinary statements.
SET_GOAL = f"{PROFILE_BASE}/verbs/set-goal"
REFLECTED = f"{PROFILE_BASE}/verbs/reflected"
# Interests: what a learner chose when there was a choice.
PREFERRED = "http://adlnet.gov/expapi/verbs/preferred"
# Community.
COMMENTED = "http://adlnet.gov/expapi/verbs/commented"
SHARED = "http://adlnet.gov/expapi/verbs/shared"
MENTORED = "http://id.tincanapi.com/verb/mentored"
COMMUNITY_VERBS = {COMMENTED: "comments", SHARED: "shares", MENTORED: "helped"}

# A competency named by a statement: a category activity of this type, or this extension.
COMPETENCY_TYPE = "http://adlnet.gov/expapi/activities/objective"
COMPETENCY_EXTENSION = f"{PROFILE_BASE}/extensions/competency"
# A goal's target competency and due date, in result or context extensions.
GOAL_TARGET_EXTENSION = f"{PROFILE_BASE}/extensions/goal-target"
GOAL_DUE_EXTENSION = f"{PROFILE_BASE}/extensions/goal-due"

# Evidence (Data 2.4.5): result.success decides; without it, score.scaled (or raw within
# min..max) at or above this counts as a correct response.
CORRECT_AT_SCALED = 0.8
