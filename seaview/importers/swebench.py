"""SWE-bench evaluation results: harness reports (`schema_version` 2, `*_ids` lists; an
infrastructure failure, which the harness also keeps among the unresolved or errored, is an
error with its `failure_reasons` reason),
legacy maps (`resolved`, `generated`, `applied`, `no_generation`, ...), per-instance
`report.json` maps, `results.json`, and prediction files (`preds.json`) that only say
what was submitted."""

from __future__ import annotations

from typing import Any

from .common import Outcomes, as_text, load_json, shape_error

# category -> (outcome, detail). Order matters: later entries never override "resolved".
_HARNESS = {
    "resolved_ids": ("resolved", "resolved"),
    "infra_failure_ids": ("error", "INFRA_FAILURE"),  # the harness's own failure (environment side)
    "unresolved_ids": ("unresolved", "unresolved"),
    "empty_patch_ids": ("unresolved", "empty_patch"),
    "error_ids": ("error", "error"),
    "incomplete_ids": ("unknown", "incomplete"),
}
# The harness (SWE-bench >= 4.1, #586) keeps an infrastructure failure in unresolved_ids or
# error_ids too, and names why in failure_reasons; an ambiguous one (an environment or a bad
# patch) only gets its reason.
_REFINED_BY_INFRA = {"unresolved_ids", "error_ids"}
_LEGACY = {
    "resolved": ("resolved", "resolved"),
    "no_generation": ("unresolved", "no_generation"),
    "no_apply": ("unresolved", "no_apply"),
    "install_fail": ("error", "install_fail"),
    "reset_failed": ("error", "reset_failed"),
    "test_errored": ("error", "test_errored"),
    "test_timeout": ("error", "test_timeout"),
    "no_logs": ("error", "no_logs"),
}
# categories that only say how far an instance got, in the order the evaluation reaches them
# (patch generated, test log written, patch applied and tests run); an instance is unresolved
# unless listed above, and its detail is the furthest stage it reached
_PROGRESS = ("submitted_ids", "generated", "with_logs", "applied", "completed_ids")
_LEGACY_KEYS = set(_LEGACY) | set(_PROGRESS)


def looks_like(data: Any) -> bool:
    if not isinstance(data, dict) or not data:
        return False
    if any(k in data for k in _HARNESS) or "schema_version" in data and "resolved_ids" in data:
        return True
    if isinstance(data.get("resolved"), list) and all(isinstance(v, list) for v in data.values()):
        return True
    if "resolved" in data and set(data) <= _LEGACY_KEYS:
        return True  # a legacy report with a field of the wrong type: parse names the field
    values = list(data.values())[:50]
    if all(isinstance(v, dict) for v in values):
        if all("resolved" in v for v in values):
            return True  # per-instance report.json
        if all("model_patch" in v for v in values):
            return True  # preds.json
    return False


def parse(path: str, data: Any = None) -> Outcomes:
    if data is None:
        data = load_json(path)
    if not looks_like(data):
        raise shape_error(path, "a SWE-bench report (resolved_ids / resolved / per-instance map / preds)", data)
    results: dict[str, tuple[str, str | None]] = {}
    warnings: list[str] = []
    model = None
    submissions: dict[str, str] = {}
    values = list(data.values())
    if values and all(isinstance(v, dict) for v in values):
        for iid, v in data.items():
            if "resolved" in v:
                ok = bool(v.get("resolved"))
                detail = "resolved" if ok else ("no_apply" if v.get("patch_successfully_applied") is False else "unresolved")
                if v.get("patch_is_None") or v.get("patch_exists") is False:
                    detail = "no_generation"
                results[str(iid)] = ("resolved" if ok else "unresolved", detail)
            else:  # predictions only: submitted, not evaluated
                results[str(v.get("instance_id") or iid)] = ("unknown", "submitted")
                if v.get("model_patch") is not None:
                    submissions[str(v.get("instance_id") or iid)] = as_text(v["model_patch"]) or ""
                model = model or as_text(v.get("model_name_or_path"))
        return Outcomes(path, results, warnings, model, submissions)

    table = _HARNESS if any(k in data for k in _HARNESS) else _LEGACY
    seen: dict[str, set[str]] = {}
    for key in list(table) + list(_PROGRESS):
        ids = data.get(key)
        if ids is None:
            continue
        if not isinstance(ids, list):
            raise shape_error(f"{path} [{key}]", "a list of instance ids", ids)
        dupes = len(ids) - len(set(map(str, ids)))
        if dupes:
            warnings.append(f"{path}: '{key}' lists {dupes} id(s) more than once; counted once")
        for iid in map(str, ids):
            seen.setdefault(iid, set()).add(key)
    reasons = data.get("failure_reasons") if isinstance(data.get("failure_reasons"), dict) else {}
    ambiguous = set(map(str, data.get("ambiguous_failure_ids") or [])) if table is _HARNESS else set()
    for iid, keys in seen.items():
        decisive = [k for k in table if k in keys]
        if "infra_failure_ids" in decisive:
            decisive = [k for k in decisive if k not in _REFINED_BY_INFRA]
        if len(decisive) > 1:
            warnings.append(f"{path}: {iid} is listed as both {' and '.join(decisive)}; using '{decisive[0]}'")
        if decisive:
            outcome, detail = table[decisive[0]]
        else:
            reached = [k for k in _PROGRESS if k in keys]
            outcome, detail = "unresolved", reached[-1] if reached else None
        reason = as_text(reasons.get(iid))
        if reason and decisive and decisive[0] == "infra_failure_ids":
            detail = f"{detail}: {reason}"
        elif reason and iid in ambiguous and outcome != "resolved":
            detail = f"{detail} (ambiguous: {reason})"
        results[iid] = (outcome, detail)
    return Outcomes(path, results, warnings, model, submissions)
