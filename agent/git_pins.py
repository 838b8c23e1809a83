"""Git settings pinned for every command Steward runs: a repository's own config must not run
programs (hooks, filters, diff drivers, aliases, pagers) from `git status`, `log` or `diff`."""

from __future__ import annotations

__all__ = ["GIT_DRIVER_KEYS", "git_pins"]

# Settings a repository's own config could use to run a program from `git status`, `git log`
# or `git diff`, pinned by command-line config (which outranks every file and reaches
# submodules). Per-driver programs (filters, diff drivers) are found and pinned per call.
_GIT_PINNED = (
    ("core.fsmonitor", "false"),
    ("core.hooksPath", "/dev/null"),
    ("core.pager", "cat"),
    ("core.attributesFile", "/dev/null"),
    ("core.sshCommand", "ssh"),
    ("core.askPass", "false"),
    ("credential.helper", ""),
    ("protocol.ext.allow", "never"),
    ("log.showSignature", "false"),
    ("gpg.program", "gpg"),
    ("gpg.openpgp.program", "gpg"),
    ("gpg.x509.program", "gpgsm"),
    ("gpg.ssh.program", "ssh-keygen"),
    ("diff.ignoreSubmodules", "all"),
    ("status.submoduleSummary", "false"),
    ("submodule.recurse", "false"),
)
# Every key git reads as a program to run (or a driver naming one), as git spells them in
# `config --get-regexp` (section and variable lowercase): what the repository sets of them is
# found by a scan and pinned (R105: a planted `gpg.ssh.defaultKeyCommand` ran from `git commit`,
# `core.gitProxy` from `git fetch`; R109: `man.<tool>.cmd` from `git status --help`, a rule's
# command, and `tar.<format>.command` from `git archive`).
GIT_DRIVER_KEYS = (
    r"^(diff\.external|(filter|diff|merge)\..+\.(clean|smudge|process|textconv|command|driver)"
    r"|remote\..+\.(uploadpack|receivepack|vcs)|alias\..+|pager\..+"
    r"|core\.(gitproxy|alternaterefscommand|editor|pager|fsmonitor|sshcommand|askpass)"
    r"|gpg\.ssh\.defaultkeycommand|gpg\.(.+\.)?program|credential\.(.+\.)?helper"
    r"|interactive\.difffilter|sequence\.editor|submodule\..+\.update|trailer\..+\.(command|cmd)"
    r"|(mergetool|difftool|browser)\..+\.(cmd|path)|(merge|diff)\.(gui)?tool|web\.browser"
    r"|sendemail\.(.+\.)?(smtpserver|sendmailcmd|tocmd|cccmd|headercmd)"
    r"|uploadpack\.packobjectshook|man\.viewer|man\..+\.(cmd|path)|tar\..+\.command"
    r"|imap\.tunnel|instaweb\..+)$"
)
_EXTERNAL_DIFF = 'f() { echo "(not run: an external diff set in the repository\'s config)"; }; f'
_ALIAS = '!echo "not run: an alias from the repository\'s config" >&2; exit 1'


def git_pins(found: list[str]) -> dict[str, str]:
    """GIT_CONFIG_* variables pinning the fixed settings and each program-valued key found."""
    pins = list(_GIT_PINNED)
    fixed = {key.lower() for key, _ in _GIT_PINNED}
    for key in dict.fromkeys(found):
        lowered = key.lower()
        leaf = lowered.rsplit(".", 1)[-1]
        if lowered in fixed:
            continue  # pinned already, to what works (`ssh`, `gpg`)
        if lowered.startswith("alias."):
            pins.append((key, _ALIAS))
        elif leaf in ("clean", "smudge", "process"):
            pins += [(key, ""), (key.rsplit(".", 1)[0] + ".required", "false")]
        elif leaf == "textconv":
            pins.append((key, "cat"))
        elif lowered.startswith("diff.") and leaf in ("external", "command"):
            pins.append((key, _EXTERNAL_DIFF))
        elif leaf in ("uploadpack", "receivepack"):
            pins.append((key, f"git-{'upload' if leaf == 'uploadpack' else 'receive'}-pack"))
        elif lowered.startswith("submodule."):
            pins.append((key, "none"))  # `submodule update` leaves it as it is
        elif leaf == "helper":
            pins.append((key, ""))  # an empty helper clears the list
        else:  # any other program: one that does nothing and fails
            pins.append((key, "false"))
    env = {"GIT_CONFIG_COUNT": str(len(pins))}
    for index, (key, value) in enumerate(pins):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env
