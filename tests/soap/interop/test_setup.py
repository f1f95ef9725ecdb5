"""The interop tier on a developer's machine and in CI."""

from __future__ import annotations

import shutil
import subprocess

from tests.soap.interop.conftest import HERE, skip_reason


def test_without_stacks_or_root_a_developer_is_told_how_to_install():
    reason = skip_reason("mono-devel mono-mcs", ci=False, root=False)
    assert "mono-devel mono-mcs" in reason and "sudo bash tests/soap/interop/install.sh" in reason


def test_ci_and_root_never_skip():
    assert skip_reason("mono-devel", ci=True, root=False) is None  # CI: a missing stack fails
    assert skip_reason("mono-devel", ci=False, root=True) is None  # root: install.sh installs it
    assert skip_reason(None, ci=False, root=False) is None


def test_install_check_names_nothing_once_installed(foreign_stacks):
    check = subprocess.run(["bash", str(HERE / "install.sh"), "--check"], capture_output=True, text=True)
    assert (check.returncode, check.stdout) == (0, "")


def test_interop_tests_carry_the_marker(request):
    assert request.node.get_closest_marker("interop") is not None


def test_install_check_names_the_missing_packages(tmp_path):
    """On a machine with none of the stacks, --check lists their Debian packages."""
    for tool in ("bash", "grep", "dirname", "id"):
        (tmp_path / tool).symlink_to(shutil.which(tool))
    check = subprocess.run(["bash", str(HERE / "install.sh"), "--check"], capture_output=True, text=True,
                           env={"PATH": str(tmp_path)})
    assert check.returncode == 1
    for package in ("php-cli", "php-soap", "jaxws", "default-jdk-headless", "nodejs", "mono-devel", "mono-mcs"):
        assert package in check.stdout.split(), check.stdout
