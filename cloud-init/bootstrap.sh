#!/usr/bin/env bash
# Builds the locked-down Qdrant host from its settings file (the only argument), step by step.
#
# Idempotent: every step looks before it changes anything, so a re-run changes nothing, a run that
# failed half-way is finished by the next, and a replaced instance picks up the data volume (and the
# certificate on it) where the old one left off. Its systemd unit (secure-qdrant-bootstrap.service)
# runs it at every boot and again after a failure; one run at a time (the lock in main).
# BOOTSTRAP_STEPS (space-separated step names, default: all) selects steps; selected steps still
# run in the order of STEPS, which is the order the host depends on. The loopback lab uses it to run
# only what needs no apt, Docker, ufw or systemd.
#
# The edge comes up before the wait for Qdrant's health: Qdrant loads every collection before it
# serves, which on a large data volume outlasts any fixed wait, and a run that gives up is only
# retried minutes later. A host whose Qdrant is still loading serves TLS (answering 502) and turns
# ready once Qdrant does.
set -euo pipefail
shopt -s inherit_errexit

readonly STEPS=(
  packages data_volume secrets qdrant nginx_http dns certificate renewal nginx_tls firewall fail2ban
  metrics qdrant_health ready
)
# The same names on Ubuntu 24.04 and Debian 12. python3-systemd is how fail2ban reads sshd's log
# from the journal (jail.d/secure-qdrant.conf); Debian's fail2ban only recommends it, as it does
# iptables, the tool of the jails' ban action (docker.io and ufw need it too, for now).
readonly PACKAGES=(docker.io nginx certbot ufw fail2ban iptables python3-systemd python3-boto3 curl openssl)
# certbot's Route 53 plugin, on DNS-01 hosts only: Debian 12 main, Ubuntu 24.04 universe.
readonly DNS01_PACKAGES=(python3-certbot-dns-route53)
readonly APT_OPTIONS=(
  -q -o Acquire::Retries=3 -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confold
)
# The volume attachment is created after the instance, so the disk may appear a little later.
readonly VOLUME_WAIT_SECONDS=300
# DNS may be set by hand once the address is known: wait long, then give up loudly.
readonly DNS_WAIT_SECONDS=3600
readonly NGINX_WAIT_SECONDS=30
# fail2ban's server starts its jails in the background: seconds.
readonly FAIL2BAN_WAIT_SECONDS=30
# TEST-NET-1 (RFC 5737): no client has it, so banning it for a moment shuts nobody out.
readonly BAN_PROBE=192.0.2.1
readonly BACKOFF_CAP_SECONDS=60
# A certificate closer to expiry than this is renewed now rather than reused.
readonly CERTIFICATE_MIN_VALIDITY_SECONDS=$((7 * 24 * 3600))
readonly FILESYSTEM=ext4
readonly MOUNT_OPTIONS=defaults,nofail,nodev,nosuid
readonly IMDS_DEFAULT_ENDPOINT=http://169.254.169.254

CURRENT_STEP=setup
TEMP=
TEMP_FILES=()
SECRETS_CHANGED=0

# Under its unit, stderr is the journal already (systemd names the stream in JOURNAL_STREAM), with
# the unit's tag: a `logger` copy would log every line twice.
STDERR_IS_JOURNAL=0
# The shell's own stderr ($$): /proc/self would be stat's, which the 2>/dev/null replaces.
[[ ${JOURNAL_STREAM:-} != "$(stat -L -c %d:%i "/proc/$$/fd/2" 2>/dev/null)" ]] || STDERR_IS_JOURNAL=1
readonly STDERR_IS_JOURNAL

# In the journal a line reads as `logger` wrote it before (the tag is the unit's SyslogIdentifier);
# elsewhere (a terminal, the lab, cloud-init's output log) it names the bootstrap.
log() {
  if ((STDERR_IS_JOURNAL)); then
    printf '%s\n' "$*" >&2
  else
    printf 'secure-qdrant: %s\n' "$*" >&2
    logger -t secure-qdrant -- "$*" 2>/dev/null || true
  fi
}

die() {
  log "error: $*"
  exit 1
}

on_exit() {
  local status=$?
  rm -f -- "${TEMP_FILES[@]}"
  if ((status != 0)); then
    log "failed in step ${CURRENT_STEP} (exit ${status})"
  fi
}

# Sets TEMP to a new file next to $1 (same filesystem: the final `mv` is an atomic rename). Whatever
# is not moved into place is removed on exit.
temp_beside() {
  TEMP=$(mktemp "$(dirname "$1")/.$(basename "$1").XXXXXX")
  TEMP_FILES+=("$TEMP")
}

# retry ATTEMPTS COMMAND...: for transient failures (mirrors, registries, ACME), with backoff.
retry() {
  local attempts=$1 attempt=1 delay=2
  shift
  until "$@"; do
    ((attempt < attempts)) || return 1
    log "$1 failed (attempt ${attempt}/${attempts}); retrying in ${delay}s"
    sleep "$delay"
    attempt=$((attempt + 1))
    delay=$((delay * 2))
  done
}

# wait_for SECONDS WHAT PREDICATE...: poll with exponential backoff, fail after about SECONDS.
wait_for() {
  local limit=$1 what=$2 waited=0 delay=1
  shift 2
  until "$@"; do
    ((waited < limit)) || die "gave up after ${waited}s waiting for ${what}"
    sleep "$delay"
    waited=$((waited + delay))
    delay=$((delay * 2 > BACKOFF_CAP_SECONDS ? BACKOFF_CAP_SECONDS : delay * 2))
  done
}

# --- 1. packages ----------------------------------------------------------------------------------

all_installed() {
  local states
  # shellcheck disable=SC2016 # a dpkg-query format, not a shell expansion
  states=$(dpkg-query -W -f='${db:Status-Status}\n' "$@" 2>/dev/null) || return 1
  ! grep -qvx installed <<<"$states"
}

step_packages() {
  local packages=("${PACKAGES[@]}")
  [[ $ACME_CHALLENGE != dns-01 ]] || packages+=("${DNS01_PACKAGES[@]}")
  # Checked first, so a re-run needs no mirror and changes no package lists.
  if ! all_installed "${packages[@]}"; then
    export DEBIAN_FRONTEND=noninteractive
    retry 5 apt-get "${APT_OPTIONS[@]}" update
    retry 5 apt-get "${APT_OPTIONS[@]}" install -y "${packages[@]}"
  fi
  systemctl enable --now docker.service nginx.service
}

# --- 2. data volume -------------------------------------------------------------------------------

# Nitro: an NVMe disk named after the volume id; Xen: the API device name, shown as /dev/xvdX.
find_data_volume() {
  local candidate
  for candidate in \
    "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${DATA_VOLUME_ID//-/}" \
    "$DATA_VOLUME_DEVICE" \
    "${DATA_VOLUME_DEVICE/#\/dev\/sd//dev/xvd}"; do
    if [[ -b $candidate ]]; then
      readlink -f "$candidate"
      return 0
    fi
  done
  return 1
}

# The volume is the database: a filesystem is created only where blkid finds nothing at all (no
# filesystem, no partition table), and anything other than ours is refused, never "fixed".
ensure_filesystem() {
  local device=$1 found=0 type
  blkid -p "$device" >/dev/null 2>&1 || found=$?
  case $found in
    0)
      type=$(blkid -p -s TYPE -o value "$device" || true)
      [[ $type == "$FILESYSTEM" ]] ||
        die "${device} holds '${type:-a partition table}', not ${FILESYSTEM}; refusing to touch it"
      ;;
    2)
      log "no filesystem on ${device}: creating ${FILESYSTEM}"
      mkfs."$FILESYSTEM" -q "$device"
      ;;
    *) die "blkid could not probe ${device} (exit ${found})" ;;
  esac
}

# One line per mount point: a line for an older volume at the same place is replaced, others kept.
ensure_fstab_entry() {
  local line="UUID=$1 ${DATA_MOUNT} ${FILESYSTEM} ${MOUNT_OPTIONS} 0 2" staged
  grep -qxF -- "$line" "$FSTAB" && return 0
  temp_beside "$FSTAB"
  staged=$TEMP
  awk -v mount_point="$DATA_MOUNT" '$2 != mount_point' "$FSTAB" >"$staged"
  printf '%s\n' "$line" >>"$staged"
  chmod 0644 "$staged"
  mv -f "$staged" "$FSTAB"
}

ensure_mounted() {
  local uuid=$1 mounted
  mounted=$(findmnt -n -o UUID --mountpoint "$DATA_MOUNT" || true)
  [[ $mounted == "$uuid" ]] && return 0
  [[ -z $mounted ]] || die "${DATA_MOUNT} already holds another filesystem (${mounted})"
  install -d -m 0755 "$DATA_MOUNT"
  mount --fstab "$FSTAB" "$DATA_MOUNT"
  # With `nofail`, mount exits 0 having mounted nothing when it cannot resolve the UUID (no udev
  # links yet): Qdrant's data must never land on the root disk's empty directory instead.
  mounted=$(findmnt -n -o UUID --mountpoint "$DATA_MOUNT" || true)
  [[ $mounted == "$uuid" ]] || die "the data volume (UUID ${uuid}) is not mounted at ${DATA_MOUNT}"
}

# certbot and its timer use the distro path; the link makes both use the volume's copy. What the
# distro put there (cli.ini) moves over unless the volume already has its own.
link_letsencrypt() {
  [[ -L $LETSENCRYPT_LINK && $(readlink "$LETSENCRYPT_LINK") == "$LETSENCRYPT_DIR" ]] && return 0
  if [[ -d $LETSENCRYPT_LINK && ! -L $LETSENCRYPT_LINK ]]; then
    tar -C "$LETSENCRYPT_LINK" -cf - . | tar -C "$LETSENCRYPT_DIR" -xf - --skip-old-files
    rm -rf -- "$LETSENCRYPT_LINK"
  fi
  ln -sfn -- "$LETSENCRYPT_DIR" "$LETSENCRYPT_LINK"
}

# superblock_field DEVICE NAME: one number from the filesystem's superblock.
superblock_field() {
  tune2fs -l "$1" | awk -F: -v name="$2" '$1 == name { print $2 + 0 }'
}

# Growing the EBS volume grows the device in place, never the filesystem on it. ext4 grows online
# (the kernel wants CAP_SYS_RESOURCE), so Qdrant keeps running. Only whole blocks count: a device a
# fraction of a block larger has nothing to grow into. A failed resize leaves a working filesystem
# at its old size: worth an error line, not a host without Qdrant.
grow_filesystem() {
  local device=$1 block_size blocks device_blocks
  block_size=$(superblock_field "$device" "Block size")
  blocks=$(superblock_field "$device" "Block count")
  device_blocks=$(($(blockdev --getsize64 "$device") / block_size))
  ((device_blocks > blocks)) || return 0
  log "growing the filesystem on ${device} from ${blocks} to ${device_blocks} blocks"
  resize2fs "$device" ||
    log "error: could not grow the filesystem on ${device}; it keeps ${blocks} blocks"
}

# Earlier releases ran Qdrant as QDRANT_LEGACY_UID, so a volume they wrote belongs to it, and
# Qdrant, now another uid, could not write its own data. Each directory is migrated only while its
# top is still owned by the old uid: after one migration (or if an operator re-owned it on
# purpose) it is left alone, so a re-run costs no walk over the whole database. Only what the old
# uid owns changes hands, and symlinks are never followed.
migrate_legacy_owner() {
  local directory
  for directory in "$@"; do
    [[ -d $directory && $(stat -c %u "$directory") == "$QDRANT_LEGACY_UID" ]] || continue
    log "moving ${directory} from uid ${QDRANT_LEGACY_UID} to ${QDRANT_UID}"
    chown -R --no-dereference --from="$QDRANT_LEGACY_UID" "${QDRANT_UID}:${QDRANT_UID}" "$directory"
  done
}

step_data_volume() {
  local device uuid
  wait_for "$VOLUME_WAIT_SECONDS" "data volume ${DATA_VOLUME_ID}" find_data_volume >/dev/null
  device=$(find_data_volume)
  ensure_filesystem "$device"
  uuid=$(blkid -p -s UUID -o value "$device")
  ensure_fstab_entry "$uuid"
  ensure_mounted "$uuid"
  grow_filesystem "$device"
  migrate_legacy_owner "$QDRANT_STORAGE" "$QDRANT_SNAPSHOTS"
  install -d -o "$QDRANT_UID" -g "$QDRANT_UID" -m 0750 "$QDRANT_STORAGE" "$QDRANT_SNAPSHOTS"
  install -d -m 0755 "$LETSENCRYPT_DIR"
  link_letsencrypt
  log "data volume ${DATA_VOLUME_ID} (${device}) mounted at ${DATA_MOUNT}"
}

# --- 3. secrets -----------------------------------------------------------------------------------

# The keys travel from SSM straight into the staged 0600 file inside the fetch program
# (cloud-init/fetch_keys.py, shipped beside this script): never through a shell variable, an argument
# list or a log line. It waits for parameters and credentials not there yet, and keeps a rotation's
# replaced key as Qdrant's alt key through the grace window.
readonly FETCH_KEYS="${BASH_SOURCE[0]%/*}/secure-qdrant-fetch-keys"

fetch_api_keys() {
  python3 "$FETCH_KEYS" "$AWS_REGION" "$API_KEY_PARAMETER" "$READ_ONLY_API_KEY_PARAMETER" \
    "$PREVIOUS_API_KEY_PARAMETER" "$QDRANT_ENV_FILE" "$1" "$SECRETS_WAIT_SECONDS" \
    "$BACKOFF_CAP_SECONDS"
}

step_secrets() {
  local staged
  install -d -m 0700 "$SECRETS_DIR"
  temp_beside "$QDRANT_ENV_FILE"
  staged=$TEMP
  fetch_api_keys "$staged"
  if cmp -s "$staged" "$QDRANT_ENV_FILE"; then
    log "API keys unchanged"
    return 0
  fi
  mv -f "$staged" "$QDRANT_ENV_FILE"
  log "API keys written to ${QDRANT_ENV_FILE}"
  # Qdrant reads its keys only at start: a running one (a rotation, the end of a grace window) is
  # restarted now; otherwise the qdrant step starts it with these.
  if systemctl is-active --quiet "$QDRANT_UNIT" 2>/dev/null; then
    systemctl restart "$QDRANT_UNIT"
    log "Qdrant restarted to apply the keys"
  else
    SECRETS_CHANGED=1
  fi
}

# --- 4. qdrant ------------------------------------------------------------------------------------

qdrant_is_healthy() {
  curl -fsS -o /dev/null "http://127.0.0.1:${QDRANT_REST_PORT}/healthz"
}

# Started, not waited for: its health is the last thing the bootstrap waits for (qdrant_health).
step_qdrant() {
  # Also makes systemd take in the data volume's new fstab line.
  systemctl daemon-reload
  # Pulled here, with retries, so the unit itself never depends on the registry; not at all when
  # the pinned tag is present already (an image with Qdrant baked in, or an earlier boot's pull).
  if ! docker image inspect "$QDRANT_IMAGE" >/dev/null 2>&1; then
    retry 5 docker pull --quiet "$QDRANT_IMAGE" >/dev/null
  fi
  systemctl enable "$QDRANT_UNIT"
  # RESTART_QDRANT=1: the converge program changed what the container starts from (image, unit).
  if ((SECRETS_CHANGED)) || [[ ${RESTART_QDRANT:-0} == 1 ]]; then
    systemctl restart "$QDRANT_UNIT"
  else
    systemctl start "$QDRANT_UNIT"
  fi
}

# --- 5. nginx and the certificate -----------------------------------------------------------------

# NGINX_ARGS is empty on the VM (the distro's nginx) and `-p PREFIX -c CONF` in the lab.
nginx_ctl() {
  local arguments
  read -ra arguments <<<"$NGINX_ARGS"
  nginx "${arguments[@]}" "$@"
}

# A site nginx rejects never stays in place, or the next restart would load it.
swap_site_checked() {
  local staged=$1 previous
  install -d -m 0755 "$(dirname "$NGINX_SITE")"
  temp_beside "$NGINX_SITE"
  previous=$TEMP
  [[ ! -e $NGINX_SITE ]] || cp "$NGINX_SITE" "$previous"
  install -D -m 0644 "$staged" "$NGINX_SITE"
  nginx_ctl -t && return 0
  if [[ -s $previous ]]; then
    install -m 0644 "$previous" "$NGINX_SITE"
  else
    rm -f "$NGINX_SITE"
  fi
  die "nginx rejected ${staged}; the previous site stays"
}

# A graceful reload only when the site changed: a converge run that changed something else, or a
# re-run, leaves nginx's workers and their connections alone.
install_site() {
  if cmp -s "$1" "$NGINX_SITE"; then
    log "nginx already serves $(basename "$1")"
    return 0
  fi
  swap_site_checked "$1"
  nginx_ctl -s reload
  log "nginx serves $(basename "$1")"
}

step_nginx_http() {
  install -d -m 0755 "$ACME_WEBROOT"
  # The distro's catch-all site would answer on port 80 for any name.
  rm -f "${NGINX_CONF_DIR}/sites-enabled/default"
  # On a re-run the TLS site is live already: going back to HTTP-only would be a needless outage.
  # So too once a certificate is there and a site is live: a changed TLS site (a converge run)
  # differs from the live one, and is the TLS step's to install.
  if [[ -e $NGINX_SITE ]] && { cmp -s "$NGINX_TLS_SITE" "$NGINX_SITE" || [[ -s $CERTIFICATE ]]; }; then
    log "TLS site already live"
    return 0
  fi
  install_site "$NGINX_HTTP_SITE"
}

# IMDSv2. The session token flows through a pipe into the second request's headers: never in a
# variable (an xtrace would print it) or an argument (other processes could read it).
public_ipv4() {
  local endpoint=${AWS_EC2_METADATA_SERVICE_ENDPOINT:-$IMDS_DEFAULT_ENDPOINT}
  curl -fsS --retry 5 -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 300" \
    "${endpoint}/latest/api/token" |
    sed 's/^/X-aws-ec2-metadata-token: /' |
    curl -fsS --retry 5 -H @- "${endpoint}/latest/meta-data/public-ipv4"
}

domain_resolves_to() {
  getent ahostsv4 "$DOMAIN" | awk '{ print $1 }' | grep -qxF -- "$1"
}

# HTTP-01 only succeeds once the name points here; asking earlier burns Let's Encrypt's rate limit.
# DNS-01 proves the names through Route 53 instead, wherever they point.
step_dns() {
  local address
  if [[ $ACME_CHALLENGE == dns-01 ]]; then
    log "dns-01: the certificate needs no record pointing here"
    return 0
  fi
  address=$(public_ipv4)
  wait_for "$DNS_WAIT_SECONDS" "${DOMAIN} to resolve to ${address}" domain_resolves_to "$address"
  log "${DOMAIN} resolves to ${address}"
}

# certbot's authenticator for the configured challenge, and its arguments.
challenge_arguments() {
  if [[ $ACME_CHALLENGE == dns-01 ]]; then
    AUTHENTICATOR=dns-route53
    CHALLENGE_ARGUMENTS=(--dns-route53)
  else
    AUTHENTICATOR=webroot
    CHALLENGE_ARGUMENTS=(--webroot --webroot-path "$ACME_WEBROOT")
  fi
}

# The names the certificate carries, one per line, sorted.
certificate_names() {
  openssl x509 -noout -ext subjectAltName -in "$CERTIFICATE" |
    grep -o 'DNS:[^,]*' | cut -c5- | sort
}

# Reused when valid for a while yet, issued by the configured ACME server (moving from staging to
# production must not keep an untrusted certificate), for exactly the configured names, and renewed
# by the configured challenge (a webroot renewal on a host without port 80 would fail for good).
certificate_is_current() {
  local renewal="${LETSENCRYPT_DIR}/renewal/${DOMAIN}.conf" names
  read -ra names <<<"$CERTIFICATE_NAMES"
  [[ -s $CERTIFICATE && -s $CERTIFICATE_KEY ]] &&
    openssl x509 -noout -checkend "$CERTIFICATE_MIN_VALIDITY_SECONDS" -in "$CERTIFICATE" \
      >/dev/null &&
    grep -qxF -- "server = ${ACME_SERVER}" "$renewal" &&
    grep -qxF -- "authenticator = ${AUTHENTICATOR}" "$renewal" &&
    [[ $(certificate_names) == "$(printf '%s\n' "${names[@]}" | sort)" ]]
}

# certbot writes without fsync: a power cut, or a snapshot of the volume in use, in the seconds
# after a renewal can leave the live links pointing at files whose data never reached the disk, or
# the renewal config empty. certbot then refuses the whole lineage, and the host would never serve
# TLS again. Such a lineage is moved aside, kept, and a new certificate issued.
lineage_is_readable() {
  local live="${LETSENCRYPT_DIR}/live/${DOMAIN}" pem
  [[ -s ${LETSENCRYPT_DIR}/renewal/${DOMAIN}.conf ]] || return 1
  for pem in cert chain fullchain; do
    openssl x509 -noout -in "${live}/${pem}.pem" 2>/dev/null || return 1
  done
  openssl pkey -noout -in "${live}/privkey.pem" </dev/null 2>/dev/null
}

set_aside_unreadable_lineage() {
  local part aside found=0 parts=("live/${DOMAIN}" "archive/${DOMAIN}" "renewal/${DOMAIN}.conf")
  for part in "${parts[@]}"; do
    if [[ -e ${LETSENCRYPT_DIR}/${part} ]]; then found=1; fi
  done
  if ((found == 0)) || lineage_is_readable; then return 0; fi
  aside="${LETSENCRYPT_DIR}/unreadable-$(date -u +%Y%m%dT%H%M%SZ)"
  for part in "${parts[@]}"; do
    mkdir -p "${aside}/${part%/*}"
    if [[ -e ${LETSENCRYPT_DIR}/${part} ]]; then mv -- "${LETSENCRYPT_DIR}/${part}" "${aside}/${part}"; fi
  done
  log "the certificate on the data volume is unreadable: its lineage is kept in ${aside}"
}

step_certificate() {
  local reload arguments name names domains=()
  challenge_arguments
  set_aside_unreadable_lineage
  if certificate_is_current; then
    log "reusing the certificate on the data volume"
    return 0
  fi
  read -ra arguments <<<"$NGINX_ARGS"
  # certbot keeps the hook in the lineage's renewal config: renewals reload nginx too.
  printf -v reload '%q ' nginx "${arguments[@]}" -s reload
  reload=${reload% }
  read -ra names <<<"$CERTIFICATE_NAMES"
  for name in "${names[@]}"; do domains+=(--domain "$name"); done
  # DNS-01: the plugin writes the challenge with the instance role (boto3's usual credentials).
  retry 4 certbot certonly --non-interactive --agree-tos --no-eff-email "${CHALLENGE_ARGUMENTS[@]}" \
    "${domains[@]}" --cert-name "$DOMAIN" --email "$ACME_EMAIL" \
    --server "$ACME_SERVER" --key-type ecdsa --elliptic-curve secp256r1 \
    --force-renewal --deploy-hook "$reload" \
    --config-dir "$LETSENCRYPT_DIR" --work-dir "$CERTBOT_WORK_DIR" --logs-dir "$CERTBOT_LOGS_DIR"
  log "certificate issued for ${CERTIFICATE_NAMES} (${ACME_CHALLENGE})"
}

step_renewal() {
  systemctl enable --now certbot.timer
}

https_is_listening() {
  (: <"/dev/tcp/127.0.0.1/${HTTPS_PORT}") 2>/dev/null
}

step_nginx_tls() {
  install_site "$NGINX_TLS_SITE"
  # A reload completes after `nginx -s reload` returns; "ready" must mean TLS is being served.
  wait_for "$NGINX_WAIT_SECONDS" "nginx on port ${HTTPS_PORT}" https_is_listening
}

# --- 6. host firewall -----------------------------------------------------------------------------

# Docker's published ports skip ufw's chains entirely. That is harmless here only because the Qdrant
# unit publishes on 127.0.0.1 and nothing else, and closes Docker's bridge to the outside itself:
# keep it that way.
#
# Reconciles rather than rebuilds: each rule is added or deleted on its own in the running firewall,
# so established connections (ufw's conntrack rules accept them) never see a gap, as they would
# across a `ufw reset` or a reload. The rules added last are kept in FIREWALL_RULES_FILE; those no
# longer wanted (an admin CIDR or a port dropped from the configuration) are deleted by the same
# words. Rules added by hand are left alone.
firewall_rules() {
  local cidrs cidr port ports
  read -ra cidrs <<<"$ADMIN_CIDRS"
  for cidr in "${cidrs[@]}"; do
    printf 'allow proto tcp from %s to any port %s\n' "$cidr" "$SSH_PORT"
  done
  read -ra ports <<<"$PUBLIC_PORTS"
  for port in "${ports[@]}"; do
    printf 'allow %s/tcp\n' "$port"
  done
}

step_firewall() {
  local wanted rule words staged
  wanted=$(firewall_rules)
  # On an active firewall `ufw default` reloads every chain: only set what differs.
  ufw status verbose | grep -qF 'deny (incoming), allow (outgoing)' || {
    ufw default deny incoming
    ufw default allow outgoing
  }
  while IFS= read -r rule; do
    [[ -n $rule ]] || continue
    read -ra words <<<"$rule"
    ufw "${words[@]}"
  done <<<"$wanted"
  if [[ -e $FIREWALL_RULES_FILE ]]; then
    while IFS= read -r rule; do
      if [[ -z $rule ]] || grep -qxF -- "$rule" <<<"$wanted"; then continue; fi
      read -ra words <<<"$rule"
      ufw delete "${words[@]}"
      log "firewall: removed '${rule}'"
    done <"$FIREWALL_RULES_FILE"
  fi
  install -d -m 0755 "$(dirname "$FIREWALL_RULES_FILE")"
  temp_beside "$FIREWALL_RULES_FILE"
  staged=$TEMP
  printf '%s\n' "$wanted" >"$staged"
  mv -f "$staged" "$FIREWALL_RULES_FILE"
  ufw status | grep -qx 'Status: active' || ufw --force enable
}

# --- 7. fail2ban ----------------------------------------------------------------------------------

# fail2ban-client --test only parses the configuration, and a ban whose action fails (its tool
# missing) is only logged while fail2ban runs on. So each jail bans the probe, and the kernel must
# then hold the rule in the jail's chain (iptables-multiport's f2b-JAIL). The ban is lifted either
# way: fail2ban never runs the action again for an address it counts as banned, so a ban left
# behind would fail every later check. Fails (and is retried) until the jail runs.
ban_takes_effect() {
  local ruled=1
  fail2ban-client set "$1" banip "$BAN_PROBE" >/dev/null 2>&1 || return 1
  iptables -w -S "f2b-$1" 2>/dev/null | grep -qF -- "-s ${BAN_PROBE}/32 " || ruled=0
  fail2ban-client set "$1" unbanip "$BAN_PROBE" >/dev/null
  ((ruled))
}

step_fail2ban() {
  local log_file jail jails
  # fail2ban refuses to start at all while a jail's log file does not exist.
  for log_file in "$NGINX_ACCESS_LOG" "$NGINX_ERROR_LOG"; do
    [[ -e $log_file ]] || install -D -m 0640 /dev/null "$log_file"
  done
  # A broken jail would stop fail2ban altogether: check before (re)loading.
  fail2ban-client --test >/dev/null
  systemctl enable fail2ban.service
  systemctl reload-or-restart fail2ban.service
  # Every jail the configuration enables, the distro's too (`['add', 'JAIL', 'BACKEND']`).
  jails=$(fail2ban-client -d | sed -n "s/^\['add', '\([^']*\)'.*/\1/p")
  for jail in $jails; do
    wait_for "$FAIL2BAN_WAIT_SECONDS" "a ban in ${jail} to reach netfilter" ban_takes_effect "$jail"
  done
  log "bans reach netfilter: ${jails//$'\n'/ }"
}

# --- 8. metrics -----------------------------------------------------------------------------------

# Before Qdrant's health: a Qdrant that never comes up must still show in CloudWatch (QdrantUp 0).
# The audit shipper's timer too: what CloudWatch receives from the host starts here.
step_metrics() {
  systemctl enable --now "$METRICS_TIMER" "$AUDIT_SHIPPER_TIMER"
}

# --- 9. Qdrant's health and ready -----------------------------------------------------------------

# The edge is already up. Should this give up, systemd keeps Qdrant starting (Restart=always) and
# nginx keeps serving, and the host reports ready only once a later run (the unit retries) finds
# Qdrant healthy: its log says what it waited for.
step_qdrant_health() {
  wait_for "$QDRANT_WAIT_SECONDS" "Qdrant on 127.0.0.1:${QDRANT_REST_PORT}" qdrant_is_healthy
  log "Qdrant is healthy"
}


step_ready() {
  if [[ ! -e $READY_MARKER ]]; then
    install -d -m 0755 "$(dirname "$READY_MARKER")"
    printf 'ready\n' >"$READY_MARKER"
  fi
  log "ready"
}

# --- main -----------------------------------------------------------------------------------------

selected_steps() {
  local requested step
  read -ra requested <<<"${BOOTSTRAP_STEPS:-${STEPS[*]}}"
  for step in "${requested[@]}"; do
    [[ " ${STEPS[*]} " == *" ${step} "* ]] || die "unknown step '${step}' (steps: ${STEPS[*]})"
  done
  for step in "${STEPS[@]}"; do
    [[ " ${requested[*]} " != *" ${step} "* ]] || printf '%s\n' "$step"
  done
}

main() {
  (($# == 1)) || die "usage: $0 SETTINGS_FILE"
  # One run at a time: systemd never starts the unit twice, but a run by hand could interleave with
  # it (two certbots, two fstab rewrites). The lock is on the settings file, so it is per host and
  # gone with the process; the losing run changes nothing and fails (the unit retries later).
  local lock
  exec {lock}<"$1"
  flock --nonblock "$lock" || die "another bootstrap run holds ${1}; not starting a second"
  # shellcheck source=/dev/null # rendered by model/user_data.py
  . "$1"
  local steps step
  steps=$(selected_steps)
  for step in $steps; do
    CURRENT_STEP=$step
    log "step ${step}"
    "step_${step}"
  done
}

trap on_exit EXIT
main "$@"
