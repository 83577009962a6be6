"""Who may do what: the roles of API tokens. ``admin`` may do everything; the CLI is an administrator's tool.

    viewer     reads reports and incidents
    collector  sends observations (state, poll)
    operator   the carrier's crews: acknowledgements, arrivals on site, explanations, exclusion requests
    assessor   the customer: exclusion decisions, maintenance consent, findings
    admin      everything
"""

from __future__ import annotations

ROLES = ("viewer", "collector", "operator", "assessor", "admin")
ADMIN = "admin"
