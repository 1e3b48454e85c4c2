"""Who may do what. Checked inside domain actions and queries, not only at the API edge."""

from __future__ import annotations

from domain.errors import PermissionDenied
from domain.identity.actions import Viewer
from i18n import N_

# May change the organisation and people's records.
HR_WRITERS = ("admin", "hr")
# May read sensitive fields (salary, birth date, national ID, bank account) of anyone.
SENSITIVE_READERS = ("admin", "hr", "finance")
# May read everyone's non-sensitive profile.
PROFILE_READERS = ("admin", "hr", "finance", "auditor")


def require_any_role(viewer: Viewer, *roles: str) -> None:
    if not viewer.has_any_role(*roles):
        raise PermissionDenied(N_("You are not allowed to do this."))
