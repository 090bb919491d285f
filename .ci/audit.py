"""Known vulnerabilities in the installed dependencies (`make audit`, run by .ci/run).

pip-audit checks every pinned package of the venv against a vulnerability database: PyPI's
advisories first, then OSV. A vulnerability fails the run unless .ci/audit-exceptions.txt
lists it ("PACKAGE ID  reason", one per line) with the reason it does not apply. A machine
that reaches neither database (this project's CI machines reach only the package index,
not PyPI's JSON API or api.osv.dev) cannot audit: that is reported, and fails only with
CHATFORGE_AUDIT_REQUIRED=1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def exceptions() -> dict[tuple[str, str], str]:
    path = HERE / "audit-exceptions.txt"
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines() if path.is_file() else []:
        if line.strip() and not line.startswith("#"):
            package, vuln, *reason = line.split(maxsplit=2)
            out[(package.lower(), vuln)] = reason[0] if reason else ""
    return out


def audit(requirements: Path, service: str) -> dict | None:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "audit.json"
        p = subprocess.run(
            [sys.executable, "-m", "pip_audit", "-r", str(requirements), "--no-deps", "--disable-pip", "--progress-spinner", "off",
             "--vulnerability-service", service, "-f", "json", "-o", str(report)],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        if not report.is_file():
            print(f"audit: {service}: pip-audit failed: {(p.stderr.strip().splitlines() or ['?'])[-1][:300]}", file=sys.stderr)
            return None
        return json.loads(report.read_text(encoding="utf-8"))


def main() -> int:
    frozen = subprocess.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"], capture_output=True, text=True, check=True).stdout
    pins = [line for line in frozen.splitlines() if "==" in line]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(pins) + "\n")
        requirements = Path(f.name)
    try:
        for service in ("pypi", "osv"):
            result = audit(requirements, service)
            if result is None:
                continue
            deps = result.get("dependencies", [])
            audited = [d for d in deps if not d.get("skip_reason")]
            if not audited:
                print(f"audit: {service}: none of {len(deps)} packages could be audited (the database is not reachable from here)", file=sys.stderr)
                continue
            allowed = exceptions()
            found = [(d["name"], d["version"], v["id"], v.get("fix_versions")) for d in audited for v in d.get("vulns", [])]
            bad = [f for f in found if (f[0].lower(), f[2]) not in allowed]
            for name, version, vuln, fixes in found:
                note = allowed.get((name.lower(), vuln))
                print(f"audit: {name} {version}: {vuln} (fixed in {', '.join(fixes or []) or 'no release yet'})" + (f" -- accepted: {note}" if note is not None else ""))
            print(f"audit: {service}: {len(audited)} of {len(pins)} packages audited, {len(found)} known vulnerabilities, {len(bad)} not accepted")
            return 1 if bad else 0
        print(f"audit: NOT AUDITED: no vulnerability database reachable for the {len(pins)} pinned packages", file=sys.stderr)
        return 1 if os.environ.get("CHATFORGE_AUDIT_REQUIRED") == "1" else 0
    finally:
        requirements.unlink()


if __name__ == "__main__":
    sys.exit(main())
