#!/usr/bin/env bash
# Operations checks: the systemd units, the do-agent drop-in and its cloud-init user data, the
# man pages and the shell completions. Run from anywhere; CI calls it from .ci/run.
#
#   bash .ci/ops-checks.sh
#
# Installs what it needs and is missing (Debian packages: systemd for systemd-analyze, mandoc,
# python3 with python3-yaml, shellcheck) when it runs as root; otherwise says what to install.
# Builds the release binary (as the acceptance checks do) into ${CARGO_TARGET_DIR:-target};
# DOSCALE_BIN=path/to/doscale checks that binary instead of building one.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
MAX_EXPOSURE=2.5

step() { printf '\n== %s\n' "$*"; }
fail() {
    printf 'ops-checks: FAILED: %s\n' "$*" >&2
    exit 1
}

# --- tools -----------------------------------------------------------------------------
step "tools"
missing=()
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v mandoc >/dev/null 2>&1 || missing+=(mandoc)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c 'import yaml' >/dev/null 2>&1 || missing+=(python3-yaml)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        fail "missing tools; install the Debian packages: ${missing[*]}"
    fi
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
systemd-analyze --version | head -n 1
echo "mandoc $(dpkg-query -W -f='${Version}' mandoc 2>/dev/null || echo '?'), $(shellcheck --version | sed -n 's/^version: /shellcheck /p')"

shellcheck "$ROOT/.ci/ops-checks.sh"

# --- build -----------------------------------------------------------------------------
if [[ -n ${DOSCALE_BIN:-} ]]; then
    # A binary built already (local runs: a debug build is enough for these checks).
    step "binary: $DOSCALE_BIN"
    BIN=$(realpath "$DOSCALE_BIN")
else
    step "build (release)"
    CARGO_TARGET_DIR=$TARGET cargo build --release --quiet --bin doscale
    BIN=$TARGET/release/doscale
fi
[[ -x $BIN ]] || fail "no binary at $BIN"
"$BIN" --version

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ops-checks.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# systemd-analyze verify, with the lines that only say this machine cannot set up cgroups or
# BPF (containers) left out, as the acceptance check does. Fails on anything else.
verify() {
    local out rc=0
    out=$(systemd-analyze verify "$@" 2>&1) || rc=$?
    out=$(printf '%s\n' "$out" | grep -v -i -e 'Failed to set up' -e 'bpf' -e 'cgroup' | sed '/^[[:space:]]*$/d' || true)
    if [[ $rc -ne 0 || -n $out ]]; then
        printf '%s\n' "$out" >&2
        fail "systemd-analyze verify $* (exit $rc)"
    fi
}

# --- systemd units ---------------------------------------------------------------------
step "systemd units: verify"
UNITS=$ROOT/contrib/systemd-timer
mkdir -p "$WORK/units"
# ExecStart= points at the built binary, as the acceptance check does.
python3 - "$UNITS/doscale.service" "$WORK/units/doscale.service" "$BIN" <<'EOF'
import re, sys
src, dst, binary = sys.argv[1:4]
text = open(src).read()
out, n = re.subn(r"(ExecStart\w*=[-@:+!]*)(\S*doscale)\b", lambda m: m.group(1) + binary, text)
if n == 0:
    sys.exit(f"{src}: no ExecStart= line runs doscale")
open(dst, "w").write(out)
EOF
cp "$UNITS/doscale.timer" "$WORK/units/doscale.timer"
grep -q '^LoadCredential=digitalocean-token:' "$WORK/units/doscale.service" || fail "doscale.service: no LoadCredential=digitalocean-token:"
grep -q '^StateDirectory=doscale' "$WORK/units/doscale.service" || fail "doscale.service: no StateDirectory=doscale"
verify "$WORK/units/doscale.service" "$WORK/units/doscale.timer"
echo "doscale.service, doscale.timer: verify clean"

step "systemd units: security"
report=$(systemd-analyze security --offline=yes "$WORK/units/doscale.service" 2>&1 || true)
score=$(printf '%s\n' "$report" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\) .*/\1/p' | head -n 1)
[[ -n $score ]] || {
    printf '%s\n' "$report" >&2
    fail "systemd-analyze security printed no overall exposure"
}
echo "overall exposure: $score (limit $MAX_EXPOSURE)"
python3 -c "import sys; sys.exit(0 if float('$score') <= $MAX_EXPOSURE else 1)" ||
    fail "doscale.service exposure $score is above $MAX_EXPOSURE"

# --- do-agent drop-in and cloud-init ---------------------------------------------------
step "do-agent drop-in: verify"
DROPIN=$ROOT/contrib/do-agent/override.conf
mkdir -p "$WORK/agent/do-agent.service.d"
# A stand-in for the packaged do-agent.service; the drop-in's binary is not on this machine.
cat >"$WORK/agent/do-agent.service" <<'EOF'
[Unit]
Description=stand-in for the DigitalOcean Monitoring Agent
[Service]
ExecStart=/bin/true --syslog
Restart=always
EOF
sed 's|/opt/digitalocean/bin/do-agent|/bin/true|' "$DROPIN" >"$WORK/agent/do-agent.service.d/override.conf"
verify "$WORK/agent/do-agent.service"
grep -q -- '--web.listen' "$DROPIN" || fail "override.conf: no --web.listen"
grep -q -- '--syslog' "$DROPIN" || fail "override.conf: do-agent's own --syslog flag is gone"
grep -q '^ExecStart=$' "$DROPIN" || fail "override.conf: ExecStart= is not reset before it is set"
# The shell of ExecStartPre=, as systemd hands it to /bin/sh: continuation lines joined, '$$'
# unescaped.
python3 - "$DROPIN" >"$WORK/agent/pre.sh" <<'EOF'
import sys
text = open(sys.argv[1]).read().replace("\\\n", " ")
line = next(l for l in text.splitlines() if l.startswith("ExecStartPre="))
cmd = line.split(" -c ", 1)[1].strip()
assert cmd[0] == cmd[-1] == "'", "ExecStartPre= is not /bin/sh -c '...'"
print(cmd[1:-1].replace("$$", "$"))
EOF
shellcheck -s sh "$WORK/agent/pre.sh"
echo "override.conf: verify clean, ExecStartPre= shell clean"

step "cloud-init user data"
python3 - "$ROOT/config/do-agent-listen.yaml" "$DROPIN" <<'EOF'
import sys, yaml
path, dropin = sys.argv[1:3]
text = open(path).read()
if not text.startswith("#cloud-config\n"):
    sys.exit(f"{path}: does not start with #cloud-config")
doc = yaml.safe_load(text)
files = {f["path"]: f for f in doc.get("write_files", [])}
f = files.get("/etc/systemd/system/do-agent.service.d/override.conf")
if f is None:
    sys.exit(f"{path}: write_files does not install /etc/systemd/system/do-agent.service.d/override.conf")
if f["content"] != open(dropin).read():
    sys.exit(f"{path}: the drop-in it writes differs from contrib/do-agent/override.conf: copy it again")
cmds = " ; ".join(doc.get("runcmd", []))
if "daemon-reload" not in cmds or "restart do-agent" not in cmds:
    sys.exit(f"{path}: runcmd does not reload systemd and restart do-agent")
print(f"{path}: the drop-in, verbatim; runcmd: {cmds}")
EOF

# --- man pages -------------------------------------------------------------------------
step "man pages: mandoc lint"
lint=$(mandoc -T lint -W warning "$ROOT"/man/doscale.1 "$ROOT"/man/doscale.toml.5 2>&1 || true)
if [[ -n $lint ]]; then
    printf '%s\n' "$lint" >&2
    fail "mandoc -T lint -W warning reports messages"
fi
page=$(mandoc -T utf8 "$ROOT/man/doscale.1" | sed 's/.\x08//g')
for sub in scrape evaluate plan apply run demo sim check status import-seed completions; do
    grep -q -- "doscale $sub" <<<"$page" || fail "man/doscale.1 does not describe \`doscale $sub\`"
done
echo "man/doscale.1, man/doscale.toml.5: lint clean, every subcommand described"

# --- completions -----------------------------------------------------------------------
step "shell completions"
"$BIN" completions bash >"$WORK/doscale.bash"
bash -n "$WORK/doscale.bash" || fail "bash completions do not parse"
grep -q evaluate "$WORK/doscale.bash" || fail "bash completions miss the subcommands"
for shell in zsh fish elvish powershell; do
    "$BIN" completions "$shell" >"$WORK/c.$shell"
    [[ -s $WORK/c.$shell ]] || fail "no $shell completions"
done
echo "bash completions parse; zsh, fish, elvish, powershell generated"

printf '\nops-checks: all passed (exposure %s)\n' "$score"
