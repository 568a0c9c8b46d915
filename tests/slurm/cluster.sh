# shellcheck shell=bash
# cluster.sh - a throwaway Slurm on this host for tests/slurm: munged,
# slurmctld and two slurmd "nodes" (n1, n2), all on loopback, all state under
# one temporary directory. Sourced; provides slurm_install, slurm_start and
# slurm_stop. slurm_start records the pid of every daemon it starts and
# slurm_stop stops exactly those, so call it from an EXIT trap. The ports are
# fixed (SLURM_PORT, default 16817, and the next two): a caller first takes an
# exclusive flock on /tmp/dptrain-slurm-test.lock, so clusters never overlap.
# Facts behind the settings (measured with Debian 12's slurm-wlm 22.05):
# - AuthInfo=cred_expire=10: a requeued job starts again once its credential
#   expires; with the default 120 s a restart took about 150 s, with 10 about 13 s.
# - EnforcePartLimits=ALL: an impossible request fails at once instead of
#   pending for ever.
# - SlurmdParameters=config_overrides: the nodes have the CPUs written here,
#   whatever this machine has.
# - Two slurmd on one host: one NodeName line each, with its own port, and %n
#   in the spool, pid and log paths.

SLURM_PACKAGES=(slurm-wlm munge libpmix-dev)
SLURM_DAEMONS=() # pids of the daemons slurm_start started

# slurm_install: installs the packages when one is missing (as scripts/setup.sh does).
slurm_install() {
  local p missing=()
  for p in "${SLURM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "cluster: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" ||
    { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; }
}

# slurm_daemon NAME CMD...: starts CMD in its own session with a clean
# environment (so no test variable leaks into jobs through a daemon); setsid
# and setpriv exec, so $! is the daemon itself.
slurm_daemon() {
  local name=$1
  shift
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin setsid "$@" >"$SLURM_DIR/$name.out" 2>&1 </dev/null &
  SLURM_DAEMONS+=($!)
}

# slurm_write_conf: writes $SLURM_CONF for the cluster under $SLURM_DIR.
slurm_write_conf() {
  local host d=$SLURM_DIR
  host=$(hostname -s)
  cat >"$SLURM_CONF" <<EOF
ClusterName=dptraintest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$SLURM_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=cred_expire=10,socket=$d/munge/munge.socket
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool/%n
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd-%n.pid
SlurmctldLogFile=$d/slurmctld.log
SlurmdLogFile=$d/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
EnforcePartLimits=ALL
MailProg=/bin/true
MpiDefault=none
SchedulerParameters=sched_interval=5,bf_interval=5
ReturnToService=2
KillWait=10
MinJobAge=300
NodeName=n1 NodeHostname=$host NodeAddr=127.0.0.1 Port=$((SLURM_PORT + 1)) CPUs=2 State=UNKNOWN
NodeName=n2 NodeHostname=$host NodeAddr=127.0.0.1 Port=$((SLURM_PORT + 2)) CPUs=2 State=UNKNOWN
PartitionName=test Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP
EOF
}

# slurm_start DIR: starts munged, slurmctld and slurmd n1 and n2 with state in
# DIR and waits (up to 60 s) until both nodes are idle. Exports SLURM_CONF
# for the client commands. Returns non-zero if the cluster did not come up.
slurm_start() {
  SLURM_DIR=$1
  SLURM_PORT=${SLURM_PORT:-16817}
  export SLURM_CONF=$SLURM_DIR/slurm.conf
  mkdir -p "$SLURM_DIR/state" "$SLURM_DIR/spool/n1" "$SLURM_DIR/spool/n2"
  # munged, as its own user, on a private socket with a fresh key.
  install -d -o munge -g munge -m 0711 "$SLURM_DIR/munge"
  setpriv --reuid=munge --regid=munge --init-groups \
    /usr/sbin/mungekey --create --keyfile="$SLURM_DIR/munge/munge.key" || return 1
  slurm_daemon munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged -F \
    --socket="$SLURM_DIR/munge/munge.socket" --key-file="$SLURM_DIR/munge/munge.key" \
    --pid-file="$SLURM_DIR/munge/munged.pid" --log-file="$SLURM_DIR/munge/munged.log" \
    --seed-file="$SLURM_DIR/munge/munged.seed"
  slurm_wait 20 test -S "$SLURM_DIR/munge/munge.socket" || { echo "cluster: munged did not start"; return 1; }
  slurm_write_conf
  slurm_daemon slurmctld slurmctld -D -i -f "$SLURM_CONF"
  slurm_daemon slurmd-n1 slurmd -D -N n1 -f "$SLURM_CONF"
  slurm_daemon slurmd-n2 slurmd -D -N n2 -f "$SLURM_CONF"
  if ! slurm_wait 60 slurm_nodes_idle; then
    echo "cluster: the nodes did not become idle"
    sinfo -N 2>&1
    return 1
  fi
}

# slurm_nodes_idle: both nodes are idle.
slurm_nodes_idle() {
  [ "$(sinfo -h -N -o '%N %t' 2>/dev/null | sort | tr '\n' ' ')" = "n1 idle n2 idle " ]
}

# slurm_wait SECONDS CMD...: polls CMD every 0.2 s; false if it never held in time.
slurm_wait() {
  local limit=$1 t0=$SECONDS
  shift
  until "$@"; do
    [ $((SECONDS - t0)) -ge "$limit" ] && return 1
    sleep 0.2
  done
}

# slurm_stop: stops the daemons slurm_start started (SIGTERM, SIGKILL after
# 15 s), slurmds first, then waits for each; also stops what is left of jobs
# (processes whose SLURM_CONF is ours, started by a slurmstepd of ours).
slurm_stop() {
  local i p
  [ ${#SLURM_DAEMONS[@]} -eq 0 ] && return 0
  for ((i = ${#SLURM_DAEMONS[@]} - 1; i >= 0; i--)); do
    p=${SLURM_DAEMONS[i]}
    kill -TERM "$p" 2>/dev/null || continue
    slurm_wait 15 slurm_gone "$p" || kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  SLURM_DAEMONS=()
}

# slurm_gone PID: PID no longer runs (reaped, or a zombie).
slurm_gone() {
  local st
  st=$(ps -o stat= -p "$1" 2>/dev/null)
  [ -z "$st" ] || [ "${st#Z}" != "$st" ]
}
