"""What the data-rights routes refuse, with the codes of the API contract (the web app tells
them apart: an export still running, a link past its time, a wrong password)."""

from __future__ import annotations

from shared.platform.errors import AppError, Conflict, Forbidden


class ExportInProgress(Conflict):
    code = "export_in_progress"


class ExportNotReady(Conflict):
    code = "export_not_ready"


class ExportExpired(AppError):
    code, status = "export_expired", 410


class InvalidPassword(Forbidden):
    code = "invalid_password"


class InvalidCode(Forbidden):
    code = "invalid_code"


class ReauthRequired(Forbidden):
    code = "reauth_required"


class CannotDeleteSelf(Conflict):
    code = "cannot_delete_self"
