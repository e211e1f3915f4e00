#!/bin/bash
# Install or upgrade the check-in kiosk on Raspberry Pi OS Bookworm (64-bit), or on any
# Debian 12 system. One command, run as root from the unpacked source:
#
#   sudo ./install.sh                 # install, or upgrade in place
#   sudo ./install.sh --collector     # also run the collector on this machine
#   sudo ./install.sh --root /srv/pi  # install into a Debian 12 root folder (chroot)
#
# Idempotent: a second run with the same source changes nothing. An upgrade (a newer
# source) backs up the journal, reinstalls the package into the same virtual
# environment and restarts the services; /var/lib/kiosk (the journal) and
# /etc/kiosk/kiosk.toml are never replaced.
#
# Layout:  /opt/kiosk/venv   a link to the running slot: slots/a or slots/b, two virtual
#                            environments (kiosk, collector commands); a signed update
#                            installs into the other one and rolls back (kiosk.update)
#          /opt/kiosk/bin/kiosk-update  the updater, run from the slot known good
#          /opt/kiosk/src    the installed source (README, hardware guide)
#          /etc/kiosk/       kiosk.toml (written only if absent), kiosk.example.toml
#          /var/lib/kiosk/   the journal (systemd StateDirectory=), backup/
#          /etc/systemd/system/  kiosk, kiosk-sync, kiosk-retention(.timer), collector
set -Eeuo pipefail

PREFIX=/opt/kiosk
VENV=$PREFIX/venv
SLOT_A=$PREFIX/slots/a
SRC_DEST=$PREFIX/src
STAMP=$PREFIX/.installed
CONF_DIR=/etc/kiosk
STATE_DIR=/var/lib/kiosk
UNIT_DIR=/etc/systemd/system
UDEV_DIR=/etc/udev/rules.d
BOOT_CONFIG=/boot/firmware/config.txt
BOOT_CMDLINE=/boot/firmware/cmdline.txt
KIOSK_USER=kiosk
KIOSK_GROUPS=(gpio video dialout render audio input)
COLLECTOR_USER=collector
APT_PACKAGES=(python3 python3-venv python3-pip libzbar0 fonts-dejavu-core libglib2.0-0
              ca-certificates sqlite3 v4l-utils systemd systemd-timesyncd espeak-ng)
# RPi.GPIO has no aarch64 wheel on PyPI: pip builds it, which needs a compiler.
APT_PACKAGES_ARM=(gcc python3-dev)
KIOSK_UNITS=(kiosk.service kiosk-sync.service kiosk-retention.service kiosk-retention.timer
             kiosk-reload.path kiosk-reload.service kiosk-update.service kiosk-update.path)
COLLECTOR_UNITS=(collector.service collector-retention.service collector-retention.timer
                 collector-report.service collector-report.timer)
ENABLE_UNITS=(kiosk.service kiosk-sync.service kiosk-retention.timer kiosk-reload.path
              kiosk-update.service kiosk-update.path)
JOURNAL_BACKUPS_KEPT=2

ROOT=""
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WITH_COLLECTOR=0
DO_APT=1
DO_START=1
PIP_ARGS=()
CHANGED_UNITS=0
CHANGED_PACKAGE=0

usage() {
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    cat <<'EOF'
Options:
  --root DIR       install into the Debian root folder DIR (commands run in a chroot)
  --src DIR        source tree to install (default: the folder of this script)
  --collector      also enable collector.service on this machine
  --no-apt         do not install system packages (they are already there)
  --no-start       install and enable, but do not start or restart services
  --pip-args ARGS  extra pip arguments, e.g. "--no-index --find-links /media/wheels"
  -h, --help       this text
EOF
}

while [ $# -gt 0 ]; do
    case "$1" in
        --root) ROOT=$(cd "$2" && pwd); shift 2 ;;
        --src) SRC=$(cd "$2" && pwd); shift 2 ;;
        --collector) WITH_COLLECTOR=1; shift ;;
        --no-apt) DO_APT=0; shift ;;
        --no-start) DO_START=0; shift ;;
        --pip-args) read -r -a PIP_ARGS <<<"$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

say() { printf 'install.sh: %s\n' "$*"; }
trap 'printf "install.sh: error: line %s: %s failed\n" "$LINENO" "$BASH_COMMAND" >&2' ERR
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }

# Run a command on the target system: in the chroot with --root, else directly.
target() {
    if [ -n "$ROOT" ]; then chroot "$ROOT" "$@"; else "$@"; fi
}
# Python run by this script must not leave new .pyc files behind (idempotence).
export PYTHONDONTWRITEBYTECODE=1

# --- preflight ----------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || die "run as root (sudo ./install.sh)"
[ -f "$SRC/setup.py" ] && [ -d "$SRC/kiosk" ] || die "$SRC is not the kiosk source (no setup.py/kiosk/)"
if [ -n "$ROOT" ]; then
    [ -x "$ROOT/bin/sh" ] || die "$ROOT is not a root folder (no /bin/sh); make one with debootstrap bookworm"
    DO_START=0
    MOUNTED=()
    cleanup() {
        local i
        for ((i=${#MOUNTED[@]}-1; i>=0; i--)); do umount -l "${MOUNTED[$i]}" 2>/dev/null || true; done
    }
    trap cleanup EXIT
    for fs in proc sys dev; do
        if ! mountpoint -q "$ROOT/$fs"; then
            mkdir -p "$ROOT/$fs"
            case $fs in
                dev) mount --bind /dev "$ROOT/dev" ;;
                sys) mount -t sysfs sysfs "$ROOT/sys" ;;
                proc) mount -t proc proc "$ROOT/proc" ;;
            esac
            MOUNTED+=("$ROOT/$fs")
        fi
    done
fi
if [ -r "$ROOT/etc/os-release" ]; then
    # shellcheck disable=SC1091
    codename=$(. "$ROOT/etc/os-release"; echo "${VERSION_CODENAME:-}")
    [ "$codename" = bookworm ] || say "warning: tested on Debian/Raspberry Pi OS bookworm, this is '$codename'"
fi
ARCH=$(target uname -m)
EXTRAS=""
case "$ARCH" in aarch64|armv7l) EXTRAS="pi" ;; esac
[ "$WITH_COLLECTOR" = 1 ] && EXTRAS="${EXTRAS:+$EXTRAS,}collector"

# --- 1. system packages (only when one is missing: a second run touches nothing) ------
install_packages() {
    local want=("${APT_PACKAGES[@]}") missing=() p
    [ "$EXTRAS" != "${EXTRAS#pi}" ] && want+=("${APT_PACKAGES_ARM[@]}")
    for p in "${want[@]}"; do
        target dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && { say "system packages: all present"; return; }
    [ "$DO_APT" = 1 ] || die "missing system packages: ${missing[*]} (run without --no-apt)"
    say "system packages: installing ${missing[*]}"
    target env DEBIAN_FRONTEND=noninteractive apt-get update -q
    target env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# --- 2. user and groups ---------------------------------------------------------------
ensure_user() {
    local user=$1 home=$2; shift 2
    local g
    for g in "$@"; do
        target getent group "$g" >/dev/null || { say "group $g: creating"; target groupadd --system "$g"; }
    done
    if ! target getent passwd "$user" >/dev/null; then
        say "user $user: creating"
        target useradd --system --user-group --home-dir "$home" --no-create-home \
            --shell /usr/sbin/nologin --comment "check-in kiosk" "$user"
    fi
    for g in "$@"; do
        if ! target id -nG "$user" | tr ' ' '\n' | grep -qx "$g"; then
            say "user $user: adding to group $g"
            target usermod -a -G "$g" "$user"
        fi
    done
}

# --- 3. the virtual environment and the package --------------------------------------
source_files() {
    (cd "$SRC" && find setup.py README.md install.sh kiosk collector systemd hardware \
        -type f ! -path '*/__pycache__/*' ! -name '*.pyc' ! -name '*.egg-info' 2>/dev/null | LC_ALL=C sort)
}

fingerprint() {
    (cd "$SRC" && source_files | while read -r f; do sha256sum "$f"; done) | sha256sum | cut -d' ' -f1
}

backup_journal() {
    local journal=$ROOT$STATE_DIR/journal.db
    [ -x "$ROOT$VENV/bin/python" ] || return 0
    # /var/lib/kiosk belongs to the kiosk user, who may have planted links there: never
    # follow one as root. The backup runs as the journal's owner, so a planted link
    # reaches nothing that user could not write anyway; no chown is needed afterwards.
    if [ -L "$journal" ] || [ -L "$ROOT$STATE_DIR" ]; then
        say "upgrade: warning: $STATE_DIR/journal.db is a symbolic link: not following it, no backup"
        return 0
    fi
    [ -f "$journal" ] || return 0
    local stamp backup owner group
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    backup=$STATE_DIR/backup/journal-$stamp.db
    owner=$(stat -c %u "$journal")
    group=$(stat -c %g "$journal")
    say "upgrade: backing up the journal to $backup"
    # SQLite's online backup: consistent even while kiosk and kiosk-sync write to it. The
    # backup file is created fresh (O_EXCL|O_NOFOLLOW) in a folder that is not a link.
    target setpriv --reuid="$owner" --regid="$group" --clear-groups \
        "$VENV/bin/python" -c 'import glob, os, sqlite3, stat, sys
src, folder, dst, keep = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
os.umask(0o077)
try:
    os.mkdir(folder, 0o700)
except FileExistsError:
    pass
if not stat.S_ISDIR(os.lstat(folder).st_mode):
    sys.exit(f"{folder} is not a folder (a link?): no backup")
os.close(os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
s = sqlite3.connect(src); d = sqlite3.connect(dst)
with d: s.backup(d)
d.close(); s.close()
# Keep the newest few backups only.
for old in sorted(glob.glob(os.path.join(folder, "journal-*.db")), reverse=True)[keep:]:
    os.unlink(old)' "$STATE_DIR/journal.db" "$STATE_DIR/backup" "$backup" "$JOURNAL_BACKUPS_KEPT" \
        || die "upgrade: the journal backup failed (see above): fix $STATE_DIR/backup, then run again"
}

install_package() {
    local want have=""
    want=$(fingerprint)
    [ -f "$ROOT$STAMP" ] && have=$(cat "$ROOT$STAMP")
    local want_stamp="$want extras=$EXTRAS"
    if [ "$have" = "$want_stamp" ] && [ -x "$ROOT$VENV/bin/kiosk" ]; then
        say "package: up to date (${want:0:12})"
        return
    fi
    if [ -n "$have" ]; then backup_journal; fi
    if [ -d "$ROOT$VENV" ] && [ ! -L "$ROOT$VENV" ]; then
        # Before A/B slots, $VENV was the environment itself: it becomes slot a.
        say "layout: replacing the single environment $VENV by slot a (A/B updates)"
        rm -rf "$ROOT$VENV"
    fi
    if [ ! -x "$ROOT$VENV/bin/python" ]; then
        say "virtual environment: creating $SLOT_A"
        install -d -m 0755 "$ROOT$PREFIX" "$ROOT$PREFIX/slots"
        rm -rf "$ROOT$SLOT_A"
        target python3 -m venv "$SLOT_A"
        ln -sfn slots/a "$ROOT$VENV"
    fi
    say "package: installing from $SRC${EXTRAS:+ [$EXTRAS]}"
    rm -rf "$ROOT$SRC_DEST.new"
    install -d -m 0755 "$ROOT$SRC_DEST.new"
    (cd "$SRC" && source_files | while read -r f; do
        install -D -m 0644 "$f" "$ROOT$SRC_DEST.new/$f"; done)
    chmod 0755 "$ROOT$SRC_DEST.new/install.sh"
    rm -rf "$ROOT$SRC_DEST" && mv "$ROOT$SRC_DEST.new" "$ROOT$SRC_DEST"
    target "$VENV/bin/pip" install --disable-pip-version-check --no-cache-dir --use-pep517 -q "${PIP_ARGS[@]}" \
        "$SRC_DEST${EXTRAS:+[$EXTRAS]}"
    # Build leftovers would make the next run's tree differ; the installed copy is in the venv.
    rm -rf "$ROOT$SRC_DEST/build" "$ROOT$SRC_DEST"/*.egg-info
    printf '%s\n' "$want_stamp" > "$ROOT$STAMP"
    CHANGED_PACKAGE=1
}

# --- 4. configuration: written only if absent -----------------------------------------
write_config() {
    # The group is looked up on the target: with --root it exists only in the chroot.
    local gid
    gid=$(target getent group "$KIOSK_USER" | cut -d: -f3)
    install -d -m 2770 -o 0 -g "$gid" "$ROOT$CONF_DIR"
    copy_if_changed "$SRC/kiosk/kiosk.example.toml" "$CONF_DIR/kiosk.example.toml" 0644 || true
    if [ -e "$ROOT$CONF_DIR/kiosk.toml" ]; then
        say "config: $CONF_DIR/kiosk.toml exists, kept as it is"
        return
    fi
    say "config: writing $CONF_DIR/kiosk.toml (set venue and collector with: kiosk provision)"
    # /etc/kiosk is writable by the kiosk group: a fixed temp name could be a planted
    # link that root would then overwrite and chown. mktemp makes a fresh file (O_EXCL).
    local tmp host
    tmp=$(mktemp "$ROOT$CONF_DIR/.kiosk.toml.XXXXXXXX")
    host=$(cat "$ROOT/etc/hostname" 2>/dev/null || echo kiosk)
    cat > "$tmp" <<EOF
# Written by install.sh. Set the venue, collector and enrolment with \`kiosk provision\`
# (or by scanning a signed provisioning QR). Every key: $CONF_DIR/kiosk.example.toml
[device]
id = "${host//\"/}"
# The journal's folder for every command (kiosk doctor and kiosk retention run by hand
# too), not only for the services that get it from systemd's StateDirectory=.
state_dir = "$STATE_DIR"

[scanner]
kind = "camera"
camera = "0"

[pins]
backend = "auto"

[display]
backend = "auto"
EOF
    chmod 0640 "$tmp"
    chown "0:$gid" "$tmp"
    mv "$tmp" "$ROOT$CONF_DIR/kiosk.toml"
}

# The spoken verdicts (display.voice), made here once with espeak-ng's Vietnamese and
# English voices into the state folder; a failure only costs the voice.
build_voice() {
    if target env STATE_DIRECTORY="$STATE_DIR" runuser -u "$KIOSK_USER" -- "$VENV/bin/kiosk" voice build >/dev/null; then
        say "voice: spoken verdicts in $STATE_DIR/voice"
    else
        say "voice: espeak-ng could not make the spoken verdicts (display.voice stays silent)"
    fi
}

# copy_if_changed SRC DEST MODE: install only when the content differs (keeps mtimes).
copy_if_changed() {
    local from=$1 to=$ROOT$2 mode=$3
    if [ -f "$to" ] && cmp -s "$from" "$to"; then return 1; fi
    install -D -m "$mode" "$from" "$to"
    say "file: $2 updated"
    return 0
}

# --- 5. units, udev rule, boot config -----------------------------------------------
install_units() {
    local u
    for u in "${KIOSK_UNITS[@]}" "${COLLECTOR_UNITS[@]}"; do
        if copy_if_changed "$SRC/systemd/$u" "$UNIT_DIR/$u" 0644; then CHANGED_UNITS=1; fi
    done
    copy_if_changed "$SRC/hardware/99-kiosk-scanner.rules" "$UDEV_DIR/99-kiosk-scanner.rules" 0644 || true
    copy_if_changed "$SRC/systemd/kiosk-update" "$PREFIX/bin/kiosk-update" 0755 || true
    local enable=("${ENABLE_UNITS[@]}")
    [ "$WITH_COLLECTOR" = 1 ] && enable+=(collector.service collector-retention.timer collector-report.timer)
    if [ -n "$ROOT" ]; then
        systemctl --root="$ROOT" enable "${enable[@]}" >/dev/null 2>&1 || \
            systemctl --root="$ROOT" enable "${enable[@]}"
    elif [ -d /run/systemd/system ]; then
        [ "$CHANGED_UNITS" = 1 ] && systemctl daemon-reload
        systemctl enable --quiet "${enable[@]}"
        udevadm control --reload 2>/dev/null && udevadm trigger --subsystem-match=tty 2>/dev/null || true
    else
        say "systemd is not running here: units installed, not enabled"
    fi
}

boot_config() {
    local cfg=$ROOT$BOOT_CONFIG cmdline=$ROOT$BOOT_CMDLINE
    [ -f "$cfg" ] || return 0  # not a Raspberry Pi image
    if ! grep -q '^# BEGIN kiosk' "$cfg"; then
        say "boot: adding UART and camera lines to $BOOT_CONFIG (reboot to apply)"
        { echo; sed -n '/^# BEGIN kiosk/,/^# END kiosk/p' "$SRC/hardware/boot-config.txt"; } >> "$cfg"
    fi
    # The serial console would talk to the scanner on the same UART: switch it off.
    if [ -f "$cmdline" ] && grep -qE 'console=(serial0|ttyAMA0|ttyS0),[0-9]+ ?' "$cmdline"; then
        say "boot: removing the serial console from $BOOT_CMDLINE"
        cp -p "$cmdline" "$cmdline.before-kiosk"
        sed -i -E 's/console=(serial0|ttyAMA0|ttyS0),[0-9]+ ?//' "$cmdline"
    fi
}

start_services() {
    [ "$DO_START" = 1 ] && [ -z "$ROOT" ] && [ -d /run/systemd/system ] || return 0
    local units=(kiosk.service kiosk-sync.service) u
    [ "$WITH_COLLECTOR" = 1 ] && units+=(collector.service)
    systemctl start kiosk-retention.timer kiosk-reload.path kiosk-update.path
    for u in "${units[@]}"; do
        if systemctl is-active --quiet "$u"; then
            if [ "$CHANGED_PACKAGE" = 1 ] || [ "$CHANGED_UNITS" = 1 ]; then
                say "restarting $u"; systemctl restart "$u"
            fi
        else
            say "starting $u"; systemctl start "$u" || say "warning: $u did not start: journalctl -u $u"
        fi
    done
}

install_packages
ensure_user "$KIOSK_USER" "$STATE_DIR" "${KIOSK_GROUPS[@]}"
[ "$WITH_COLLECTOR" = 1 ] && ensure_user "$COLLECTOR_USER" /var/lib/collector
install_package
write_config
build_voice
install_units
boot_config
start_services
say "done. Next: kiosk provision --help; then kiosk doctor (stop the kiosk first: systemctl stop kiosk)"
