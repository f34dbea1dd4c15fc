"""Nothing secret-shaped is committed: every file git tracks is scanned by detect-secrets (keys, tokens, passwords
in URLs and assignments, high-entropy strings), and whatever it finds must be a reviewed fake listed in
``.secrets.baseline`` (a test's made-up password, an example in the docs). Measurement outputs
(benchmarks/results), screenshots and the published field datasets (data/fields: numbers) are not scanned.

A finding that is a fake on purpose: look at it, then run ``detect-secrets scan --baseline .secrets.baseline`` to
add it to the baseline (the same exclusions are kept in it), and commit the baseline with it. A real secret: remove
it from the file and from git's history, and rotate it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from detect_secrets import SecretsCollection
from detect_secrets.settings import transient_settings

from tests.helpers import repo_root

BASELINE = ".secrets.baseline"


def tracked_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=repo_root(), capture_output=True, check=True)
    return [name for name in listed.stdout.decode().split("\0") if name]


def test_the_repository_holds_no_secret_but_the_reviewed_fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo_root())  # the baseline names files relative to the repository
    baseline = json.loads((repo_root() / BASELINE).read_text())
    with transient_settings({"plugins_used": baseline["plugins_used"], "filters_used": baseline["filters_used"]}):
        found = SecretsCollection()
        found.scan_files(*tracked_files())
        known = SecretsCollection.load_from_baseline(baseline)
    new = [
        f"{name}:{secret.line_number}: {secret.type}"
        for name, secret in (found - known)
        if secret.is_secret is not False
    ]
    assert not new, (
        "secret-shaped text is committed (remove it and rotate it if it is real; if it is a fake on purpose, review "
        f"it and run `detect-secrets scan --baseline {BASELINE}`):\n" + "\n".join(sorted(new))
    )


def test_the_scan_finds_a_secret_it_was_not_told_about(tmp_path: Path) -> None:
    """The same settings catch a private key and a password in a URL in a file of their own."""
    baseline = json.loads((repo_root() / BASELINE).read_text())
    planted = tmp_path / "planted.txt"
    # Built from parts so that this file itself is not secret-shaped.
    planted.write_text(
        "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIEow" + "IBAAKCAQEA" * 8 + "\n-----END RSA PRIVATE KEY-----\n"
        "url = postgresql://farm:" + "Xq7" + "vLr2pW9@db.example/registry\n"
    )
    with transient_settings({"plugins_used": baseline["plugins_used"], "filters_used": baseline["filters_used"]}):
        found = SecretsCollection()
        found.scan_file(str(planted))
    types = {secret.type for _, secret in found}
    assert {"Private Key", "Basic Auth Credentials"} <= types, types
