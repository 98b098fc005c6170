#!/usr/bin/env bash
# A real single-node SLURM cluster, with accounting, for testing stnlib's `slurm` launcher.
#
#   bash tools/slurm/cluster.sh start    # install Debian's packages if missing, start every daemon
#   bash tools/slurm/cluster.sh status   # which daemons run, and the node's state
#   bash tools/slurm/cluster.sh stop     # cancel jobs, stop every daemon by the pid in its pid file
#
# Each command is idempotent. SLURM's state, spool, logs and pid files live under $STNLIB_SLURM_DIR
# (default /tmp/stnlib-slurm); munged keeps its default socket and mariadbd its default data folder
# and socket, so that SLURM's and the MariaDB client's built-in defaults find them.
#
# The configuration is written to /etc/slurm (where sbatch, sinfo and sacct look without SLURM_CONF)
# and is refused if a slurm.conf this script did not write is already there: that is someone's cluster.
#
# Accounting (slurmdbd + MariaDB) is not optional: without it `sacct` fails and submitit, which asks
# sacct for job states, waits forever on a job that was killed.
#
# Needs root (it installs packages and starts daemons as their users). Settings checked on a 2-core
# Debian 12 VM without systemd (gVisor): proctrack/linuxproc, task/none and jobacct_gather/none need no
# cgroups; KillWait=5 because submitit's job script ignores SIGTERM, so a cancelled job otherwise
# lingers for the default 30 s before SIGKILL.
set -euo pipefail

DIR=${STNLIB_SLURM_DIR:-/tmp/stnlib-slurm}
CLUSTER=${STNLIB_SLURM_CLUSTER:-stnlib}
CONF_DIR=/etc/slurm
MARKER="# written by stn-alignment tools/slurm/cluster.sh"
PACKAGES=(munge slurmd slurmctld slurm-client slurmdbd mariadb-server)
MYSQL_PID=/run/mysqld/mysqld.pid
# munged runs as munge and writes its pid file into a folder that user owns.
MUNGE_PID=$DIR/munge/munged.pid
# start order; stop goes the other way
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)

say() { echo "cluster.sh: $*"; }
die() { echo "cluster.sh: error: $*" >&2; exit 1; }

pidfile_of() {
  case $1 in
    munged) echo "$MUNGE_PID" ;;
    mariadbd) echo "$MYSQL_PID" ;;
    *) echo "$DIR/run/$1.pid" ;;
  esac
}

# The pid in the daemon's pid file, if that process is alive.
running_pid() {
  local f pid
  f=$(pidfile_of "$1")
  [ -s "$f" ] || return 1
  pid=$(tr -dc '0-9' < "$f")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND every 0.2 s until it succeeds.
wait_for() {
  local limit=$1 what=$2 i
  shift 2
  for ((i = 0; i < limit * 5; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  die "$what did not come up within ${limit} s; see the logs under $DIR/log"
}

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "packages missing (${missing[*]}) and not root: install them with apt-get"
  say "installing ${missing[*]}"
  # The package lists are only fetched when apt does not know a package yet.
  if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
  fi
  # Without an init system the packages' own service starts fail (or start daemons with the
  # distribution's config); policy-rc.d's 101 tells invoke-rc.d to start nothing.
  local policy=/usr/sbin/policy-rc.d own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && own_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    > "$DIR/log/apt.log" 2>&1 || { [ $own_policy -eq 1 ] && rm -f "$policy"; die "apt-get install failed; see $DIR/log/apt.log"; }
  [ $own_policy -eq 1 ] && rm -f "$policy"
  return 0
}

write_config() {
  local host mem_mb cpus
  host=$(hostname -s)
  cpus=$(nproc)
  # Half of the memory available now: slurmd drains a node whose RealMemory exceeds what it finds.
  mem_mb=$(awk '/MemAvailable/ {print int($2 / 1024 / 2)}' /proc/meminfo)
  if [ -e "$CONF_DIR/slurm.conf" ] && ! grep -qF "$MARKER" "$CONF_DIR/slurm.conf"; then
    die "$CONF_DIR/slurm.conf exists and was not written by this script; not overwriting another cluster's config"
  fi
  mkdir -p "$CONF_DIR"
  cat > "$CONF_DIR/slurm.conf" <<EOF
$MARKER; edits are overwritten on start
ClusterName=$CLUSTER
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
# Cores and memory are consumable, so --cpus-per-task and --mem are honoured when packing jobs.
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobCompType=jobcomp/none
MpiDefault=none
# No mail on this test cluster; the default /bin/mail is not installed and slurmctld logs an error.
MailProg=/bin/true
KillWait=5
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  # slurmdbd refuses a config that others can read (it may hold the database password).
  (umask 077 && cat > "$CONF_DIR/slurmdbd.conf" <<EOF
$MARKER; edits are overwritten on start
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
LogFile=$DIR/log/slurmdbd.log
PidFile=$DIR/run/slurmdbd.pid
EOF
  )
  chmod 600 "$CONF_DIR/slurmdbd.conf"
}

start_munged() {
  running_pid munged >/dev/null && return 0
  install -d -o munge -g munge -m 755 /run/munge
  install -d -o munge -g munge -m 700 "$DIR/munge"
  [ -s /etc/munge/munge.key ] || runuser -u munge -- mungekey --create >/dev/null
  runuser -u munge -- /usr/sbin/munged --pid-file="$MUNGE_PID" --log-file="$DIR/munge/munged.log" \
    --seed-file="$DIR/munge/munged.seed"
  wait_for 10 munged bash -c 'munge -n | unmunge'
}

start_mariadbd() {
  running_pid mariadbd >/dev/null && return 0
  install -d -o mysql -g root -m 755 /run/mysqld
  # --skip-networking: slurmdbd reaches it through the default Unix socket; no TCP port to collide on.
  setsid /usr/sbin/mariadbd --user=mysql --pid-file="$MYSQL_PID" --skip-networking \
    --log-error="$DIR/log/mariadb.log" </dev/null >/dev/null 2>&1 &
  wait_for 60 mariadbd mariadb-admin --protocol=socket ping
}

start_slurmdbd() {
  running_pid slurmdbd >/dev/null || /usr/sbin/slurmdbd
  wait_for 60 slurmdbd sacctmgr -n list cluster
  # Registered before slurmctld starts, so slurmctld's first registration with slurmdbd succeeds.
  if ! sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER"; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
  fi
}

start_slurmctld() {
  running_pid slurmctld >/dev/null || /usr/sbin/slurmctld
  wait_for 30 slurmctld scontrol ping
}

start_slurmd() {
  running_pid slurmd >/dev/null || /usr/sbin/slurmd
  local i state=""
  for ((i = 0; i < 300; i++)); do
    state=$(sinfo -h -o %T 2>/dev/null | head -n1 || true)
    case $state in
      idle | mixed | allocated) say "node $(hostname -s) is $state"; return 0 ;;
      # A node that was down when slurmctld last saw it (e.g. after stop) comes back on request.
      down* | drain*) scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 0.2
  done
  die "node not idle after 60 s (state: ${state:-none}); see $DIR/log/slurmd.log and slurmctld.log"
}

start() {
  local t0=$SECONDS
  mkdir -p "$DIR"/{state,spool,log,run}
  install_packages
  write_config
  start_munged
  start_mariadbd
  start_slurmdbd
  start_slurmctld
  start_slurmd
  say "cluster $CLUSTER up in $((SECONDS - t0)) s (state under $DIR)"
}

stop() {
  # Jobs first: their processes would outlive slurmd and keep the CPUs busy.
  if running_pid slurmctld >/dev/null && [ -n "$(squeue -h -o %i 2>/dev/null)" ]; then
    squeue -h -o %i | xargs scancel 2>/dev/null || true
    local n
    for ((n = 0; n < 100; n++)); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.2; done
    say "cancelled the jobs still queued or running"
  fi
  local i d pid
  for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
    d=${DAEMONS[i]}
    if pid=$(running_pid "$d"); then
      local t=$SECONDS
      kill "$pid"
      local n
      for ((n = 0; n < 150; n++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      if kill -0 "$pid" 2>/dev/null; then
        say "$d (pid $pid) ignored SIGTERM for 30 s; sending SIGKILL"
        kill -9 "$pid" 2>/dev/null || true
      fi
      say "stopped $d (pid $pid) in $((SECONDS - t)) s"
    fi
  done
  return 0
}

status() {
  local d pid rc=0
  for d in "${DAEMONS[@]}"; do
    if pid=$(running_pid "$d"); then echo "$d: running (pid $pid)"; else echo "$d: stopped"; rc=1; fi
  done
  if [ $rc -eq 0 ]; then sinfo -h -o "node %N: %T (%c CPUs, %m MB)"; fi
  return $rc
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) die "unknown command '${1:-}'; valid: start, stop, status" ;;
esac
