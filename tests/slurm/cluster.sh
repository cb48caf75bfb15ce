#!/usr/bin/env bash
# A real single-node SLURM cluster (Debian's slurm-wlm + munge, root, no systemd, no cgroups),
# for the integration test that runs the workflow through `--workflow-profile profiles/slurm`.
# Adapted from ../shared/reference/slurm_recipe.sh. No slurmdbd: jobs are polled with squeue,
# and finished jobs stay visible for MinJobAge=300 s.
#
#   cluster.sh install        apt packages, once (~40 s)
#   cluster.sh run CMD ...    start the daemons, run CMD, stop them in an EXIT trap (whatever CMD does)
#   cluster.sh start | stop   the same by hand
#   cluster.sh alive          exit 0 if any daemon this script starts is still running
set -euo pipefail

PIDFILES=(/run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid)

log() { printf '[slurm %s] %s\n' "$(date +%T)" "$*" >&2; }

wait_for() {  # wait_for SECONDS CMD... : poll CMD until it succeeds, then show its last error
  local n=$(( $1 * 4 )); shift
  for _ in $(seq 1 "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  "$@"
}

pid_alive() {  # a zombie counts as gone: PID 1 may reap late
  local st; st=$(ps -o stat= -p "$1" 2>/dev/null || true)
  [ -n "$st" ] && [ "${st:0:1}" != Z ]
}

do_install() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null && return 0
  apt-cache policy slurmctld 2>/dev/null | grep -q Candidate || apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends munge slurmctld slurmd slurm-client >/dev/null
  log "installed slurm $(dpkg-query -W -f='${Version}' slurmctld), munge $(dpkg-query -W -f='${Version}' munge)"
}

start_munge() {
  [ -s /etc/munge/munge.key ] || { mungekey --create --force; chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
  install -d -o munge -g munge -m 0755 /run/munge
  if [ -s /run/munge/munged.pid ] && pid_alive "$(cat /run/munge/munged.pid)"; then return; fi
  runuser -u munge -- /usr/sbin/munged
  wait_for 10 sh -c 'munge -n | unmunge'
}

write_slurm_conf() {
  local host
  host=$(hostname -s)
  getent hosts "$host" >/dev/null || echo "127.0.0.1 $host" >> /etc/hosts
  install -d -o slurm -g slurm /var/lib/slurm/slurmctld /var/log/slurm
  install -d /var/lib/slurm/slurmd
  cat > /etc/slurm/slurm.conf <<CONF
ClusterName=metapt-test
SlurmctldHost=$host
SlurmUser=slurm
AuthType=auth/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmdSpoolDir=/var/lib/slurm/slurmd
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
InactiveLimit=0
KillWait=30
MinJobAge=300
SlurmctldTimeout=120
SlurmdTimeout=300
Waittime=0
$(slurmd -C | head -n1) State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
}

do_start() {
  start_munge
  write_slurm_conf
  if [ -s /run/slurmctld.pid ] && pid_alive "$(cat /run/slurmctld.pid)"; then scontrol reconfigure; else slurmctld; fi
  if ! { [ -s /run/slurmd.pid ] && pid_alive "$(cat /run/slurmd.pid)"; }; then slurmd; fi
  wait_for 60 sh -c 'sinfo -h -o %t | grep -qx idle'
  log "up: slurmctld $(cat /run/slurmctld.pid), slurmd $(cat /run/slurmd.pid), munged $(cat /run/munge/munged.pid)"
}

do_stop() {
  local f pid
  for f in "${PIDFILES[@]}"; do
    [ -s "$f" ] || continue
    pid=$(cat "$f")
    if pid_alive "$pid"; then
      kill "$pid"
      for _ in $(seq 1 60); do pid_alive "$pid" || break; sleep 0.25; done
      pid_alive "$pid" && kill -9 "$pid"
    fi
    rm -f "$f"  # slurmctld runs as 'slurm' and cannot unlink its pidfile in /run
  done
  # With a slurm.conf but no controller, `scontrol show config` waits 10 s, and the Snakemake
  # SLURM plugin runs it whenever Snakemake starts: every later local run would pay that.
  rm -f /etc/slurm/slurm.conf
  log "stopped"
}

do_alive() {
  local f
  for f in "${PIDFILES[@]}"; do
    [ -s "$f" ] && pid_alive "$(cat "$f")" && return 0
  done
  return 1
}

case "${1:-}" in
  install) do_install ;;
  start) do_start ;;
  stop) do_stop ;;
  alive) do_alive ;;
  run) shift; trap do_stop EXIT; do_start; "$@" ;;
  *) echo "usage: cluster.sh install | run CMD... | start | stop | alive" >&2; exit 2 ;;
esac
