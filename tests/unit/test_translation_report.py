"""The per-package translation report of an imported closure (composer.package.translationreport): what was
translated and what was not, per package, rows merged across architectures, deterministic."""

from __future__ import annotations

from composer.package.actions import Actions, Service, TmpFile, User
from composer.package.translationreport import render, translated

SSH = Actions(users=(User(name="sshd", group="nogroup", home="/run/sshd"),),
              tmpfiles=(TmpFile(type="C", path="/etc/ssh/sshd_config", argument="/usr/share/openssh/sshd_config"),),
              services=(Service(name="ssh", command=("/usr/sbin/sshd", "-D"), readiness="notify"),),
              firstboot=("ssh-host-keys",), untranslated=("postinst: sed -i s/a|b/ $new_config",))


def test_translated_actions_read_as_one_phrase_each() -> None:
    assert translated(SSH) == ["user sshd (group nogroup)",
                               "tmpfiles C /etc/ssh/sshd_config <- /usr/share/openssh/sshd_config",
                               "service ssh: /usr/sbin/sshd -D (readiness notify)", "first boot ssh-host-keys"]
    assert translated(Actions(ldconfig=True)) == ["ldconfig (first boot)"]


def test_rows_merge_across_architectures_and_name_the_ones_that_differ() -> None:
    other = Actions(ldconfig=True, untranslated=("postinst: update-binfmts --import x",))
    imported = {"x86_64": [("openssh-server", SSH), ("libc6", Actions(ldconfig=True)), ("zlib1g", Actions())],
                "riscv64": [("openssh-server", SSH), ("libc6", other), ("zlib1g", Actions())]}
    text = render(imported, title="T")
    assert text == render(dict(reversed(imported.items())), title="T"), "deterministic"
    assert "| openssh-server | user sshd (group nogroup)<br>tmpfiles C" in text
    assert "sed -i s/a\\|b/ $new_config" in text, "a | in an item does not break the table"
    assert "| libc6 (riscv64) | ldconfig (first boot) | postinst: update-binfmts --import x |" in text
    assert "| libc6 (x86_64) | ldconfig (first boot) | - |" in text
    assert "Nothing to translate (1): zlib1g." in text
    assert "- x86_64: 3 packages, 2 with translated actions, 1 with 1 untranslated items" in text
