"""scripts/setup.sh leaves apt's policy-rc.d as it found it, whether the install succeeds or fails.

The script runs for real with a PATH of its own: the tools it uses, no promtool (so it installs), and an
`apt-get` that records its calls and fails or succeeds as told; policy-rc.d is a file of the test's.
"""

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

TOOLS = ("bash", "env", "id", "mktemp", "cp", "mv", "rm", "tee", "chmod", "cat", "dirname", "python3")


def _run_setup(tmp_path: Path, policy: Path, install_fails: bool) -> subprocess.CompletedProcess:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    log = tmp_path / "apt.log"
    # While apt "installs", policy-rc.d must say no daemon starts: the stub copies what it sees.
    (bin_dir / "apt-get").write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {log}\n'
        f'case "$*" in *"install"*prometheus*) cat "{policy}" > {tmp_path / "seen-during-install"}; '
        f"exit {1 if install_fails else 0};; esac\n"
    )
    (bin_dir / "apt-get").chmod(0o755)
    env = {"PATH": str(bin_dir), "AMCOMPANION_POLICY_RC_D": str(policy), "HOME": str(tmp_path), "TMPDIR": str(tmp_path)}
    # A copy of the script in a directory of its own: after a successful install it goes on to helm, finds no
    # npm and stops there, never touching the repository's .venv or .tools.
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    return subprocess.run(
        ["bash", str(tmp_path / "scripts" / "setup.sh")], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("install_fails", [True, False])
@pytest.mark.parametrize("before", [None, "#!/bin/sh\nexit 0\n"])
def test_policy_rc_d_is_restored_after_the_install(tmp_path: Path, before: str | None, install_fails: bool) -> None:
    policy = tmp_path / "policy-rc.d"
    if before is not None:
        policy.write_text(before)
        policy.chmod(0o700)
    result = _run_setup(tmp_path, policy, install_fails)
    assert "installing prometheus" in result.stdout, result.stdout + result.stderr
    assert (tmp_path / "seen-during-install").read_text() == "#!/bin/sh\nexit 101\n"
    if install_fails:
        assert result.returncode != 0
    if before is None:
        assert not policy.exists()
    else:
        assert policy.read_text() == before and (policy.stat().st_mode & 0o777) == 0o700
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("tmp.") and p.is_file()]  # no saved copy left
