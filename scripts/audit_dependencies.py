"""Audit the pinned dependencies (constraints.txt) for known vulnerabilities; `make test` runs it first.

Exit status 1 names each vulnerable pin and the versions that fix it. When the vulnerability data
cannot be had (no network, an outage, a time-out, or the index answering without it, which pip-audit
reports as "not found on PyPI" for each package and then calls a pass), the audit says so plainly and
exits 0, so that an outage elsewhere does not stop the tests; the next run audits again. Set
CAREDESK_AUDIT_REQUIRED=1 to make that a failure too.

The pins are audited as they are written (no resolution, no virtualenv): they are what every install
uses, and the local editable package ``caredesk`` is not among them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "constraints.txt"
#: the whole audit; pip-audit's own per-request timeout is shorter
TIMEOUT_S = 180
REQUEST_TIMEOUT_S = 20


def run_pip_audit(constraints: Path = CONSTRAINTS) -> tuple[dict | None, str]:
    """pip-audit's JSON report of the pins (None if it produced none) and what it said on stderr."""
    with tempfile.TemporaryDirectory(prefix="caredesk-audit-") as directory:
        output = Path(directory) / "report.json"
        command = [sys.executable, "-m", "pip_audit", "--requirement", str(constraints), "--no-deps",
                   "--disable-pip", "--progress-spinner", "off", "--timeout", str(REQUEST_TIMEOUT_S),
                   "--format", "json", "--output", str(output)]
        try:
            finished = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S,
                                      stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return None, f"pip-audit did not finish within {TIMEOUT_S} s"
        if not output.exists() or not output.stat().st_size:
            return None, finished.stderr.strip() or f"pip-audit exited {finished.returncode} without a report"
        return json.loads(output.read_text()), finished.stderr.strip()


def verdict(report: dict | None, problem: str = "", *, required: bool = False) -> tuple[int, str]:
    """The exit status and the message for a pip-audit report (None: the audit could not run)."""
    if report is None:
        return _unaudited(f"the dependency audit could not run: {_last_line(problem)}", required)
    dependencies = report.get("dependencies", [])
    vulnerable = [dep for dep in dependencies if dep.get("vulns")]
    if vulnerable:
        lines = ["known vulnerabilities in pinned dependencies (upgrade the pins in constraints.txt):"]
        for dep in vulnerable:
            for vuln in dep["vulns"]:
                fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
                lines.append(f"  {dep['name']}=={dep.get('version')}: {vuln['id']} (fixed in: {fixed})")
        return 1, "\n".join(lines)
    unaudited = [dep for dep in dependencies if dep.get("skip_reason")]
    if not dependencies:
        return _unaudited("the dependency audit checked nothing: constraints.txt has no pins?", required)
    if unaudited:
        names = ", ".join(dep["name"] for dep in unaudited[:8]) + (" ..." if len(unaudited) > 8 else "")
        return _unaudited(f"the vulnerability service gave no data for {len(unaudited)} of {len(dependencies)} "
                          f"pinned packages ({names}): {unaudited[0]['skip_reason']}", required)
    return 0, f"dependency audit: no known vulnerabilities in {len(dependencies)} pinned packages"


def _unaudited(message: str, required: bool) -> tuple[int, str]:
    if required:
        return 1, f"{message}\n(CAREDESK_AUDIT_REQUIRED=1: failing)"
    return 0, f"WARNING: {message}\nthe dependency audit is INCOMPLETE; the tests run anyway"


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no reason given"


def main() -> int:
    """Audit constraints.txt and report."""
    report, problem = run_pip_audit()
    status, message = verdict(report, problem, required=os.environ.get("CAREDESK_AUDIT_REQUIRED") == "1")
    print(message, file=sys.stderr if status else sys.stdout)
    return status


if __name__ == "__main__":
    sys.exit(main())
